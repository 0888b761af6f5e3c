package console

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestARefusalIsToldInThePersonsLanguageWithTheServicesWordsAfterIt(t *testing.T) {
	cats, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	zh, en := lang{Code: "zh", msgs: cats["zh"]}, lang{Code: "en", msgs: cats["en"]}
	said := "text: must be 1 to 2000 characters"
	for _, c := range []struct {
		code    codes.Code
		status  int
		zh, en  string
		refusal bool
	}{
		{codes.InvalidArgument, http.StatusBadRequest, "提交的内容不符合要求", "What was sent was refused", true},
		{codes.PermissionDenied, http.StatusForbidden, "不允许这样做", "does not allow this", true},
		{codes.FailedPrecondition, http.StatusConflict, "事项当前的状态", "The issue's state", true},
		{codes.ResourceExhausted, http.StatusTooManyRequests, "操作太频繁", "Too many requests", true},
		{codes.NotFound, 0, "", "", false},
		{codes.Unavailable, 0, "", "", false},
	} {
		err := status.Error(c.code, said)
		code, msg, ok := refusal(zh, err)
		if ok != c.refusal || code != c.status {
			t.Errorf("%s: refusal = %d, %t; want %d, %t", c.code, code, ok, c.status, c.refusal)
			continue
		}
		if !ok {
			continue
		}
		if !strings.Contains(msg, c.zh) || !strings.Contains(msg, said) {
			t.Errorf("%s in Chinese: %q; want %q and the service's words", c.code, msg, c.zh)
		}
		if _, msg, _ := refusal(en, err); !strings.Contains(msg, c.en) || !strings.Contains(msg, said) {
			t.Errorf("%s in English: %q; want %q and the service's words", c.code, msg, c.en)
		}
	}
	if _, _, ok := refusal(zh, errors.New("connection reset")); ok {
		t.Error("a failure that is no gRPC status was taken for a refusal")
	}
}
