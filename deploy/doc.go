// Package deploy holds no code: it is the home of rotator's deployment files
// and of their tests. base/ is the kustomize base that runs the worker in a
// cluster with least-privilege RBAC, vault/ configures Vault's kubernetes
// auth for it, compose/ holds the scripts of ../docker-compose.yaml, and
// versions.env the versions and ports that the compose file, the Dockerfile
// and the devstack share.
//
// It is a module of its own (rotator/deploy), so that what only these tests
// use (BuildKit, compose-go, Prometheus' rule checker) stays out of the
// worker's module and its image build. `cd deploy && go test ./...` lints the Dockerfile (BuildKit's build checks and
// rotator's rules), loads docker-compose.yaml with compose-go, and checks
// that the Roles match the catalog; all without Docker or a cluster. With
// ROTATOR_DEVSTACK set (source .devstack/env) it also applies the rendered
// manifests to the devstack's kube-apiserver and checks what the worker's
// ServiceAccount may and may not do, and logs in to the devstack's Vault with
// it.
package deploy
