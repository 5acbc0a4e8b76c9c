//go:build tools

// Package vault records the Vault server command that devstack builds, so
// that `go mod tidy` keeps its dependencies.
package vault

import (
	_ "github.com/hashicorp/vault"
)
