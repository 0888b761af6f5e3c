module github.com/whistle-dispatch/whistle/services

go 1.26.8

require (
	github.com/whistle-dispatch/whistle/proto v0.0.0 // indirect
	go.yaml.in/yaml/v3 v3.0.4 // indirect
)

replace (
	github.com/whistle-dispatch/whistle/pkg => ../pkg
	github.com/whistle-dispatch/whistle/proto => ../proto
)
