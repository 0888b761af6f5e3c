// Package deploy holds no code: its tests check Whistle's deployment files (the Dockerfile, the
// compose file, the Kubernetes manifests and the NATS chart values, the Prometheus rules and
// the Grafana dashboard) so that a broken file fails CI, though no container engine or cluster
// runs where the tests do. It is a module of its own so that the libraries those checks need
// (compose-go, kustomize, the Kubernetes API types, Prometheus's rule parser) stay out of the
// modules that are deployed.
package deploy
