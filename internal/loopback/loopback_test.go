package loopback

import "testing"

func TestIs(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST.": true, "127.0.0.1": true, "127.8.9.10": true, "::1": true, "[::1]": true,
		"10.0.0.1": false, "api.openai.com": false, "localhost.example.com": false, "": false, "0.0.0.0": false,
	} {
		if got := Is(host); got != want {
			t.Errorf("Is(%q) = %v, want %v", host, got, want)
		}
	}
}
