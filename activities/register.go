package activities

import "go.temporal.io/sdk/worker"

// Register registers every activity struct's methods with the worker.
func Register(r worker.ActivityRegistry, kube *Kube, pg *Postgres) {
	r.RegisterActivity(kube)
	r.RegisterActivity(pg)
}
