//go:build race

package deploy

// raceBuild says the tests were built with the race detector: the whistle binary they build is
// then built with it too, which reuses what `go test -race` compiled for the other modules.
const raceBuild = true
