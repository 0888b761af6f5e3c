//go:build !race

package deploy

// raceBuild says the tests were built with the race detector (see race_test.go).
const raceBuild = false
