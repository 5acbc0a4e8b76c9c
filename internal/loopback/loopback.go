// Package loopback tells the hosts a connection to which never leaves the
// machine, the one place where rotator accepts plain http.
package loopback

import (
	"net"
	"strings"
)

// Is reports whether host (a name or an IP, without port) is loopback:
// localhost, 127.0.0.0/8 or ::1.
func Is(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
