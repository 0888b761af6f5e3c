package console

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFollowMarksThePageChangedOnceForManyMessagesAndReportsTheEnd(t *testing.T) {
	msgs := make(chan int)
	var seen []int
	changed, ended := follow(func() (int, error) {
		m, ok := <-msgs
		if !ok {
			return 0, io.EOF
		}
		return m, nil
	}, func(m int) { seen = append(seen, m) })
	for i := range 3 {
		msgs <- i // each is received before the next send returns; the marks pile into one
	}
	close(msgs)
	if err := <-ended; !errors.Is(err, io.EOF) {
		t.Fatalf("the watch ended with %v, want io.EOF", err)
	}
	if len(changed) != 1 {
		t.Errorf("%d marks wait, want one for the three messages", len(changed))
	}
	if len(seen) != 3 || seen[0] != 0 || seen[2] != 2 {
		t.Errorf("onMessage saw %v, want 0, 1, 2", seen)
	}
}

func TestAnEventWritesEveryLineOfItsDataAsAFieldOfItsOwn(t *testing.T) {
	w := httptest.NewRecorder()
	if err := writeEvent(w, "inbox", "<ul>\n<li>a</li>\r\n</ul>"); err != nil {
		t.Fatal(err)
	}
	want := "event: inbox\ndata: <ul>\ndata: <li>a</li>\ndata: </ul>\n\n"
	if got := w.Body.String(); got != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
	if !strings.HasSuffix(w.Body.String(), "\n\n") {
		t.Error("the event does not end with a blank line")
	}
}

func TestThePagesPolicyAllowsTheCitysTileServerAloneBesideTheConsole(t *testing.T) {
	csp, err := contentPolicy("")
	if err != nil || !strings.Contains(csp, "img-src 'self' data: blob:;") {
		t.Errorf("without tiles: %q, %v", csp, err)
	}
	csp, err = contentPolicy("https://tiles.city.example/{z}/{x}/{y}.png")
	if err != nil || !strings.Contains(csp, "img-src 'self' data: blob: https://tiles.city.example;") || strings.Contains(csp, "script-src 'self' https") {
		t.Errorf("with tiles: %q, %v", csp, err)
	}
	for _, bad := range []string{"ftp://tiles.example/{z}", "/tiles/{z}", "javascript:alert(1)"} {
		if _, err := contentPolicy(bad); err == nil {
			t.Errorf("the tile server %q was taken", bad)
		}
	}
}
