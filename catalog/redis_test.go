package catalog_test

import (
	"testing"

	"rotator/catalog"
)

const redisAdmin = "adminSecret: {namespace: rotator, name: redis-admin}"

// redisOK is a redis section with every required field.
const redisOK = "    redis: {address: 'redis.data.svc:6380', user: app, " + redisAdmin + "}\n"

// TestRedisBadInput: the redis section's mistakes are refused with the
// field and the fix.
func TestRedisBadInput(t *testing.T) {
	runBadInputs(t, []badInput{
		{missing, "redis block", target("redis", ""), "redis", "add redis: {address: redis.data.svc:6380, user: ...", nil},
		{missing, "redis fields", target("redis", "    redis: {}\n"), "redis.address", "host:port of the server", []string{"redis.user: is required", "redis.adminSecret: is required"}},
		{wrong, "postgres section on redis", target("redis", redisOK+pgOK), "postgres", "remove it or set kind: postgres", nil},
		{wrong, "redis section on jwt", target("jwt", redisOK), "redis", "remove it or set kind: redis", nil},
		{value, "address with a scheme", target("redis", "    redis: {address: 'rediss://r:6380', user: app, "+redisAdmin+"}\n"), "redis.address", "without a scheme", nil},
		{value, "address without port", target("redis", "    redis: {address: redis.data.svc, user: app, "+redisAdmin+"}\n"), "redis.address", "is not host:port", nil},
		{value, "plaintext over the network", target("redis", "    redis: {address: 'redis.data.svc:6379', plaintext: true, user: app, "+redisAdmin+"}\n"), "redis.plaintext", "AUTH would cross the network in clear", nil},
		{value, "tls and plaintext", target("redis", "    redis: {address: '127.0.0.1:6379', plaintext: true, tls: {caFile: /ca.pem}, user: app, "+redisAdmin+"}\n"), "redis.tls", "remove one", nil},
		{value, "user with a space", target("redis", "    redis: {address: 'r:6380', user: 'a b', "+redisAdmin+"}\n"), "redis.user", "printable ASCII", nil},
		{value, "key not password", target("redis", "    key: token\n"+redisOK), "key", "set key: password", nil},
		{value, "urlKey overwrites", target("redis", "    redis: {address: 'r:6380', user: app, urlKey: password, "+redisAdmin+"}\n"), "redis.urlKey", "choose another, e.g. REDIS_URL", nil},
		{value, "urlKey not a key", target("redis", "    redis: {address: 'r:6380', user: app, urlKey: 'a/b', "+redisAdmin+"}\n"), "redis.urlKey", "is not a valid Secret data key", nil},
		{value, "persist", target("redis", "    redis: {address: 'r:6380', user: app, persist: always, "+redisAdmin+"}\n"), "redis.persist", "use acl-save, config-rewrite, none", nil},
		{dns, "admin secret namespace", target("redis", "    redis: {address: 'r:6380', user: app, adminSecret: {namespace: Bad, name: s}}\n"), "redis.adminSecret.namespace", "lowercase RFC 1123 label", nil},
		{value, "two targets on one user", target("redis", redisOK) + "  - name: b\n    kind: redis\n    namespace: ns2\n    secret: s\n    redis: {address: 'Redis.Data.Svc.:6380', user: app, " + redisAdmin + "}\n",
			"redis.user", "two targets setting one user's password undo each other", []string{`user "app" on redis.data.svc:6380 is also rotated by targets[0] (a)`}},
		{syntax, "misspelt field", target("redis", "    redis: {address: 'r:6380', user: app, usr: x, "+redisAdmin+"}\n"), `unknown field "usr"`, "check its spelling", nil},
	})
}

// TestRedisDefaults: a redis target gets key password, the 90-day cadence
// and ACL SAVE, and accepts a server on loopback in plain text.
func TestRedisDefaults(t *testing.T) {
	c, err := catalog.Parse([]byte(target("redis", redisOK) + "  - name: b\n    kind: redis\n    namespace: ns\n    secret: t\n    redis: {address: '127.0.0.1:6379', plaintext: true, user: app2, " + redisAdmin + "}\n"))
	if err != nil {
		t.Fatal(err)
	}
	tg := c.Targets[0]
	if tg.Key != catalog.RedisPasswordKey || tg.Redis.Persist != "acl-save" || tg.Every.Hours() != 90*24 {
		t.Errorf("defaults: key %q, persist %q, every %s", tg.Key, tg.Redis.Persist, tg.Every)
	}
	if !c.Targets[1].Redis.Plaintext {
		t.Error("plaintext to loopback was not kept")
	}
}
