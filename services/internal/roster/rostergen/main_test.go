package main

import (
	"bytes"
	"os"
	"testing"
)

func TestTheCommittedRostersAreWhatTheGeneratorWrites(t *testing.T) {
	var out bytes.Buffer
	if err := run(nil, &out); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatal("sample.yaml differs from what rostergen writes: run go generate ./services/internal/roster")
	}
}
