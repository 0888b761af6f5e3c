package casenum

import "testing"

func TestTheSameKeyAlwaysNamesTheSameCase(t *testing.T) {
	a, b := FromKey("worker-1/req-42"), FromKey("worker-1/req-42")
	if a != b {
		t.Fatalf("%s != %s", a, b)
	}
	if c := FromKey("worker-1/req-43"); c == a {
		t.Fatalf("different keys gave the same case %s", c)
	}
	if got, err := Normalize(a); err != nil || got != a {
		t.Fatalf("Normalize(%s) = %s, %v", a, got, err)
	}
}

func TestCaseNumbersAreReadAsPeopleTypeThem(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"k7m3-qx9a", "K7M3-QX9A", true},
		{"K7M3QX9A", "K7M3-QX9A", true},
		{"O1L3-QX9I", "0113-QX91", true},
		{"K7M3-QX9", "", false},
		{"K7M3-QX9U", "", false},
		{"K7M3.QX9A", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v", tt.in, got, err)
		}
	}
}
