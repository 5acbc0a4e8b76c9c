package workflows_test

import (
	"time"

	"github.com/stretchr/testify/mock"

	"rotator/activities"
	"rotator/catalog"
	"rotator/workflows"
)

// windowPlan is the plan of a target whose window is 09:00-10:00 UTC,
// every day; the tests start at noon, when it is closed.
var windowPlan = func() activities.Plan {
	p := plan
	p.Window = &catalog.Window{Start: "09:00", End: "10:00"}
	return p
}()

var noon = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// forwardAt mocks the forward steps with p and records when promote ran.
func (s *rotationSuite) forwardAt(p activities.Plan, promoted *time.Time) {
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(p, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.Anything).Return(rollouts, nil).
		Run(func(mock.Arguments) { *promoted = s.env.Now() }).Once()
	s.env.OnActivity(kube.VerifyConsumers, mock.Anything, mock.Anything).Return(activities.AwaitResult{}, nil).Once()
}

// TestPromoteWaitsForTheWindow: a rotation started outside its window
// stages at once and waits, on a timer, in step awaiting-window with the
// opening in its status, then promotes when the window opens.
func (s *rotationSuite) TestPromoteWaitsForTheWindow() {
	s.env.SetStartTime(noon)
	var promoted time.Time
	s.forwardAt(windowPlan, &promoted)
	s.expectRetireOld()
	var waiting workflows.Status
	s.env.RegisterDelayedCallback(func() { waiting = s.status() }, time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	s.Equal(workflows.StepDone, s.result().Step)

	opens := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	s.Equal(workflows.StepAwaitWindow, waiting.Step)
	s.True(waiting.WindowOpensAt.Equal(opens), "window opens at %s, want %s", waiting.WindowOpensAt, opens)
	s.Equal("every day 09:00-10:00 UTC", waiting.Window)
	s.Contains(waiting.Reminder, "promote waits for the rotation window (every day 09:00-10:00 UTC): it opens at 2026-12-04T09:00:00Z")
	s.Contains(waiting.Reminder, "starter abort "+target)
	s.NotNil(waiting.New, "stage runs outside the window")
	s.True(promoted.Equal(opens), "promoted at %s, want when the window opens (%s)", promoted, opens)
}

// TestEmergencyIgnoresTheWindow: a compromised secret is replaced now.
func (s *rotationSuite) TestEmergencyIgnoresTheWindow() {
	s.env.SetStartTime(noon)
	var promoted time.Time
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(windowPlan, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.Anything).Return(rollouts, nil).
		Run(func(mock.Arguments) { promoted = s.env.Now() }).Once()
	s.env.OnActivity(kube.VerifyConsumers, mock.Anything, mock.Anything).Return(activities.AwaitResult{}, nil).Once()
	s.expectRetireOld()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target, Emergency: true})
	s.Equal(workflows.StepDone, s.result().Step)
	s.Less(promoted.Sub(noon), time.Minute, "an emergency rotation promoted at %s, after waiting for the window", promoted)
}

// TestInsideTheWindowNoWait: a rotation started inside its window does
// not stop in awaiting-window.
func (s *rotationSuite) TestInsideTheWindowNoWait() {
	s.env.SetStartTime(time.Date(2026, 12, 3, 9, 15, 0, 0, time.UTC))
	var promoted time.Time
	s.forwardAt(windowPlan, &promoted)
	s.expectRetireOld()
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	st := s.result()
	s.Equal(workflows.StepDone, st.Step)
	s.True(promoted.Equal(time.Date(2026, 12, 3, 9, 15, 0, 0, time.UTC)), "promoted at %s", promoted)
	s.True(st.WindowOpensAt.IsZero())
}

// TestAbortWhileWaitingForTheWindow: an abort in awaiting-window deletes
// what was staged; nothing was promoted.
func (s *rotationSuite) TestAbortWhileWaitingForTheWindow() {
	s.env.SetStartTime(noon)
	s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(windowPlan, nil).Once()
	s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
	s.env.OnActivity(kube.RetireSecret, mock.Anything, mock.MatchedBy(func(in activities.RetireInput) bool {
		return in.Secret.Name == newRef.Name && in.StagedByRun != ""
	})).Return(activities.RetireResult{Deleted: true}, nil).Once()
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalAbort, workflows.Decision{By: "erin", Reason: "release freeze"})
	}, time.Hour)
	s.env.ExecuteWorkflow(workflows.TypeRotateJWTSecret, workflows.RotateInput{Target: target})
	st := s.rolledBack()
	s.Equal("erin", st.Aborted.By)
	s.env.AssertNotCalled(s.T(), "PromoteAndAwait", mock.Anything, mock.Anything)
}

// TestPostgresWindow: single-user's apply, which ends the old password,
// waits for the window; alternating-users applies at once (no consumer
// sees the other user's password), promotes when the window opens, and
// locks the previous user at retire inside the window too, after an
// approval outside it.
func (s *rotationSuite) TestPostgresWindow() {
	opens := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		strategy                      string
		stopsAtApply                  bool
		applied, promoted, lockedWant time.Time
	}{
		{catalog.StrategySingleUser, true, opens, opens, opens.Add(24 * time.Hour)},
		{catalog.StrategyAlternating, false, noon, opens, opens.Add(24 * time.Hour)},
	} {
		s.newEnv(target, kube, pgActs)
		s.env.SetStartTime(noon)
		p := windowPlan
		p.Kind = catalog.KindPostgres
		p.OldStopsAtApply = tc.stopsAtApply
		p.Postgres = &activities.PostgresPlan{Strategy: tc.strategy, Role: "app", Users: []string{"app_a", "app_b"}, Username: "app_b"}
		var applied, promoted, locked time.Time
		s.env.OnActivity(kube.Preflight, mock.Anything, mock.Anything).Return(p, nil).Once()
		s.env.OnActivity(pgActs.PreflightDatabase, mock.Anything, mock.Anything).Return(p, nil).Once()
		s.env.OnActivity(kube.StageSecret, mock.Anything, mock.Anything).Return(newRef, nil).Once()
		s.env.OnActivity(pgActs.ApplyPassword, mock.Anything, mock.Anything).Run(func(mock.Arguments) { applied = s.env.Now() }).Return(nil).Once()
		s.env.OnActivity(kube.PromoteAndAwait, mock.Anything, mock.Anything).Run(func(mock.Arguments) { promoted = s.env.Now() }).Return(rollouts, nil).Once()
		s.env.OnActivity(kube.VerifyConsumers, mock.Anything, mock.Anything).Return(activities.AwaitResult{}, nil).Once()
		s.env.OnActivity(pgActs.VerifyLogin, mock.Anything, mock.Anything).Return(nil).Maybe()
		s.env.OnActivity(kube.RetireSecret, mock.Anything, mock.Anything).Return(activities.RetireResult{Deleted: true}, nil).Once()
		s.env.OnActivity(pgActs.LockPreviousUser, mock.Anything, mock.Anything).Run(func(mock.Arguments) { locked = s.env.Now() }).Return(nil).Once()
		// Approved at 12:00 the day after promote, outside the window.
		s.env.RegisterDelayedCallback(func() {
			s.env.SignalWorkflow(workflows.SignalApprove, workflows.Decision{By: "erin", Reason: "clients reconnected"})
		}, 24*time.Hour)
		s.env.ExecuteWorkflow(workflows.TypeRotateDatabasePassword, workflows.RotateInput{Target: target})
		s.Equal(workflows.StepDone, s.result().Step, tc.strategy)
		s.True(applied.Equal(tc.applied), "%s: applied at %s, want %s", tc.strategy, applied, tc.applied)
		s.True(promoted.Equal(tc.promoted), "%s: promoted at %s, want %s", tc.strategy, promoted, tc.promoted)
		s.True(locked.Equal(tc.lockedWant), "%s: previous user locked at %s, want %s", tc.strategy, locked, tc.lockedWant)
		s.env.AssertExpectations(s.T())
	}
}
