package catalog

// The sample city in city.yaml is generated, because its boundaries must tile the city without
// gap or overlap: change ./samplegen and run go generate, never the file by hand. A test in
// samplegen fails when the committed file and the generator's output differ.
//go:generate go run ./samplegen -o city.yaml
