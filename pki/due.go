package pki

import "time"

// minLifeFraction is the share of a certificate's lifetime it is kept at
// least, whatever renewBefore says; see Due.
const minLifeFraction = 3

// Due says where a certificate stands at now for the daily scan: due when
// now is within renewBefore of NotAfter, expired when now is past
// NotAfter (expired certificates are due too, and the most urgent).
//
// A certificate is kept for at least the first third of its lifetime
// (NotBefore to NotAfter), even when renewBefore is longer than the other
// two thirds: otherwise a certificate that the PKI role capped below what
// the catalog asked for would be due again the day it was issued, and the
// scan would rotate it every day. Both dates come from Inspect; an Info
// without NotAfter (no certificate) is due and expired. A negative
// renewBefore counts as 0.
func Due(info Info, now time.Time, renewBefore time.Duration) (due bool, expired bool) {
	if info.NotAfter.IsZero() {
		return true, true
	}
	if now.After(info.NotAfter) {
		return true, true
	}
	renewBefore = max(renewBefore, 0)
	if !info.NotBefore.IsZero() && info.NotBefore.Before(info.NotAfter) {
		life := info.NotAfter.Sub(info.NotBefore)
		renewBefore = min(renewBefore, life-life/minLifeFraction)
	}
	return !now.Before(info.NotAfter.Add(-renewBefore)), false
}
