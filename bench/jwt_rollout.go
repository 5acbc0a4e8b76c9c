package main

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// rolloutClock watches the consumer while a procedure runs, to tell the
// time its rollout took from the time the procedure spent around it.
type rolloutClock struct {
	stop   func()
	events chan rolloutEvent
}

// rolloutEvent is the consumer at one watch event: its generation, and
// whether it had rolled that generation out.
type rolloutEvent struct {
	at       time.Time
	gen      int64
	complete bool
}

// watchRollout starts watching the consumer from where it is now.
func (s *jwtScenario) watchRollout(ctx context.Context) (*rolloutClock, error) {
	d, err := s.e.kube.AppsV1().Deployments(s.ns).Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	w, err := s.e.kube.AppsV1().Deployments(s.ns).Watch(wctx, metav1.ListOptions{
		FieldSelector: "metadata.name=app", ResourceVersion: d.ResourceVersion})
	if err != nil {
		cancel()
		return nil, err
	}
	c := &rolloutClock{stop: func() { cancel(); w.Stop() }, events: make(chan rolloutEvent, 1024)}
	c.events <- rolloutEvent{at: time.Now(), gen: d.Generation, complete: true}
	go func() {
		defer close(c.events)
		for ev := range w.ResultChan() {
			if d, ok := ev.Object.(*appsv1.Deployment); ok {
				c.events <- rolloutEvent{at: time.Now(), gen: d.Generation, complete: rolledOut(d)}
			}
		}
	}()
	return c, nil
}

// rolling stops the watch and returns the time from the first template
// change to the completion of the last one's rollout.
func (c *rolloutClock) rolling() time.Duration {
	// The procedure saw the rollout end; the watch may deliver that
	// event a moment later.
	time.Sleep(200 * time.Millisecond)
	c.stop()
	var gen0, last int64
	var changed, done time.Time
	for ev := range c.events {
		switch {
		case gen0 == 0:
			gen0, last = ev.gen, ev.gen
		case ev.gen > last:
			if changed.IsZero() {
				changed = ev.at
			}
			last, done = ev.gen, time.Time{}
		}
		if ev.gen > gen0 && ev.complete && done.IsZero() {
			done = ev.at
		}
	}
	if changed.IsZero() || done.IsZero() {
		return 0
	}
	return done.Sub(changed)
}
