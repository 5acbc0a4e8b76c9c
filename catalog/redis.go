package catalog

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"k8s.io/apimachinery/pkg/util/validation"

	"rotator/internal/loopback"
	"rotator/redisacl"
)

// KindRedis rotates the password of a Redis ACL user (Redis 6 and later).
const KindRedis Kind = "redis"

// Redis configures a redis target: where the server is, which ACL user the
// Secret logs in as, and who may change that user's passwords.
type Redis struct {
	// Address is host:port as the worker reaches the server.
	Address string `json:"address"`
	// User is the ACL user whose password rotates; the Secret's username.
	User string `json:"user"`
	// AdminSecret holds username and password of an ACL user that may run
	// ACL SETUSER and ACL GETUSER on User (and ACL SAVE).
	AdminSecret *SecretRef `json:"adminSecret"`
	// TLS says how the worker verifies the server: its CA file (default
	// the system's CAs) and the name its certificate carries (default the
	// address's host).
	TLS *RedisTLS `json:"tls,omitempty"`
	// Plaintext connects without TLS, which AUTH then crosses in clear:
	// accepted only for a server on the worker's own machine.
	Plaintext bool `json:"plaintext,omitempty"`
	// URLKey, when set, adds a redis:// (rediss://) URL under that data key.
	URLKey string `json:"urlKey,omitempty"`
	// Persist is how the server keeps the users across a restart: acl-save
	// (default; its aclfile), config-rewrite (its redis.conf) or none (a
	// managed service that keeps them itself).
	Persist string `json:"persist,omitempty"`
}

// RedisTLS is how the worker verifies a Redis server's certificate.
type RedisTLS struct {
	// CAFile is a PEM file of the CAs the worker trusts for the server.
	CAFile string `json:"caFile,omitempty"`
	// ServerName is the name the server's certificate must carry.
	ServerName string `json:"serverName,omitempty"`
}

// The data keys of a redis Secret.
const (
	RedisUsernameKey = "username"
	RedisPasswordKey = "password"
)

// redisKind registers the redis kind: a user holds several passwords at
// once, so the new one works before any consumer moves and the old one
// until retire removes it: no login fails.
func redisKind() kindSpec {
	return kindSpec{
		kind:     KindRedis,
		section:  "redis",
		example:  "redis: {address: redis.data.svc:6380, user: ..., adminSecret: {namespace: ..., name: ...}}",
		has:      func(t *Target) bool { return t.Redis != nil },
		every:    90 * 24 * time.Hour,
		defaults: redisDefaults,
		check:    redisCheck,
		logins:   redisLogins,
	}
}

// redisLogins is the user a redis target sets passwords of: two targets
// on one user would each, at retire, remove the password the other's
// consumers use.
func redisLogins(t Target) []passwordRole {
	host, p, err := net.SplitHostPort(t.Redis.Address)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || t.Redis.User == "" {
		return nil
	}
	return []passwordRole{loginOn("user", host, port, "redis.user", t.Redis.User)}
}

func redisDefaults(t *Target) {
	if t.Key == "" {
		t.Key = RedisPasswordKey
	}
	if t.Redis.Persist == "" {
		t.Redis.Persist = redisacl.PersistACLSave
	}
}

func redisCheck(t *Target, fail failFunc) {
	r := t.Redis
	if t.Key != RedisPasswordKey {
		fail("key", "a redis Secret holds username and password: remove key or set key: password")
	}
	host, port, err := net.SplitHostPort(r.Address)
	switch {
	case r.Address == "":
		fail("redis.address", "is required: host:port of the server as the worker reaches it, e.g. redis.data.svc:6380")
	case err != nil || port == "" || !isHost(host):
		fail("redis.address", "%q is not host:port: use e.g. redis.data.svc:6380, without a scheme (TLS is the default; see redis.tls)", truncate(r.Address))
	case r.Plaintext && !loopback.Is(host):
		fail("redis.plaintext", "%s is not on the worker's machine, and AUTH would cross the network in clear: serve TLS on the server (tls-port) and remove plaintext", truncate(host))
	}
	switch {
	case r.User == "":
		fail("redis.user", "is required: the ACL user the Secret logs in as (ACL LIST shows them)")
	case strings.IndexFunc(r.User, func(c rune) bool { return unicode.IsSpace(c) || !unicode.IsPrint(c) || c > unicode.MaxASCII }) >= 0:
		fail("redis.user", "%q has spaces or characters other than printable ASCII: use the user's name as ACL LIST shows it", truncate(r.User))
	}
	if r.AdminSecret == nil {
		fail("redis.adminSecret", "is required: a Secret with username and password of an ACL user allowed ACL SETUSER and ACL GETUSER, e.g. {namespace: rotator, name: redis-admin}")
	} else {
		checkSecretRef("redis.adminSecret", *r.AdminSecret, fail)
	}
	if r.TLS != nil && r.Plaintext {
		fail("redis.tls", "is set together with redis.plaintext: remove one")
	}
	if r.URLKey != "" {
		if msgs := validation.IsConfigMapKey(r.URLKey); len(msgs) > 0 {
			fail("redis.urlKey", "%q is not a valid Secret data key: %s", truncate(r.URLKey), strings.Join(msgs, "; "))
		} else if r.URLKey == RedisUsernameKey || r.URLKey == RedisPasswordKey {
			fail("redis.urlKey", "%q would overwrite the %s key: choose another, e.g. REDIS_URL", r.URLKey, r.URLKey)
		}
	}
	if !slices.Contains(redisacl.PersistModes(), r.Persist) {
		fail("redis.persist", "%q is not a choice: use %s", truncate(r.Persist), strings.Join(redisacl.PersistModes(), ", "))
	}
}
