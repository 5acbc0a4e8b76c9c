package providertest

import (
	"fmt"
	"time"
)

// Key is a snapshot of one API key, value included: the demo's stand-ins
// save it so that a restart keeps the keys, their ids and statuses.
type Key struct {
	ID      string    `json:"id"`
	Value   string    `json:"value"`
	Name    string    `json:"name"`
	Status  string    `json:"status"`
	Created time.Time `json:"created"`
}

// Keys returns every API key the server knows, in creation order.
func (s *Server) Keys() []Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Key, 0, len(s.order))
	for _, id := range s.order {
		k := s.keys[id]
		out = append(out, Key{ID: k.id, Value: k.value, Name: k.name, Status: k.status, Created: k.created})
	}
	return out
}

// RestoreKey registers a key from a snapshot made by Keys, keeping its id,
// name, status and creation time. It panics on a key that is too short or
// already registered, as AddKey does.
func (s *Server) RestoreKey(k Key) {
	id := s.AddKeyNamed(k.Value, k.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.keys[id]
	delete(s.keys, id)
	r.id, r.status, r.created = k.ID, k.Status, k.Created
	s.keys[r.id] = r
	s.order[len(s.order)-1] = r.id
	s.byValue[r.value] = r.id
}

// AddKey registers value as an active API key and returns the provider's id
// for it. The key is listed by the admin API with a redacted value built the
// way the provider shows it: OpenAI "sk-proj-...aB3d" (first 8 and last 4
// characters), Anthropic "sk-ant-api03-R2D...igAA" (first 16 and last 4).
// It panics on a value shorter than 24 bytes, which would make the redacted
// value give away most of it, or on a value already registered.
func (s *Server) AddKey(value string) string {
	return s.AddKeyNamed(value, "")
}

// AddKeyNamed is AddKey with the key's display name ("" for a generated
// one).
func (s *Server) AddKeyNamed(value, name string) string {
	if len(value) < 24 {
		panic(fmt.Sprintf("providertest: AddKey: a key of %d bytes is too short to redact (24 at least)", len(value)))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.byValue[value]; dup || s.admins[value] {
		panic("providertest: AddKey: that value is already registered")
	}
	s.seq++
	k := &apiKey{value: value, name: name, status: StatusActive, created: time.Now().UTC().Add(time.Duration(s.seq) * time.Millisecond)}
	if k.name == "" {
		k.name = fmt.Sprintf("rotator-test-%d", s.seq)
	}
	switch s.provider {
	case openAI:
		k.id = "key_" + randomString(16)
		k.hint = value[:8] + "..." + value[len(value)-4:]
	case anthropic:
		k.id = "apikey_01" + randomString(22)
		k.hint = value[:16] + "..." + value[len(value)-4:]
	}
	s.keys[k.id] = k
	s.order = append(s.order, k.id)
	s.byValue[value] = k.id
	return k.id
}

// AddAdminKey registers value as an admin key: accepted by the admin
// endpoints and, as with the real APIs, refused by /v1/models.
func (s *Server) AddAdminKey(value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.byValue[value]; dup {
		panic("providertest: AddAdminKey: that value is already an API key")
	}
	s.admins[value] = true
}

// KeyStatus returns the status of the key with id: StatusActive, and then
// StatusDeleted (OpenAI) or StatusInactive, StatusArchived, StatusExpired
// (Anthropic); "" for an id the server never issued.
func (s *Server) KeyStatus(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keys[id]; k != nil {
		return k.status
	}
	return ""
}

// SetKeyStatus changes the status of the key with id, to set up a key that
// was revoked, archived or expired outside the code under test.
func (s *Server) SetKeyStatus(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[id]
	if k == nil {
		panic("providertest: SetKeyStatus: no key " + id)
	}
	k.status = status
}

// KeyHint returns the redacted value (OpenAI) or partial key hint
// (Anthropic) the admin API shows for the key with id.
func (s *Server) KeyHint(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keys[id]; k != nil {
		return k.hint
	}
	return ""
}

// Revocations returns how many delete (OpenAI) or status-update (Anthropic)
// calls the server answered, for any key, successful or not.
func (s *Server) Revocations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.revocations {
		n += c
	}
	return n
}

// RevocationsOf returns how many delete or status-update calls named the key
// with id.
func (s *Server) RevocationsOf(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revocations[id]
}
