package temporal

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync/atomic"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// serverLogger feeds the server's structured logs into an slog.Logger. The
// server logs a great deal at info level even when idle, so anything below
// warn is dropped before it reaches the handler.
type serverLogger struct {
	out *slog.Logger
	// stopping silences everything once shutdown begins: the services stop
	// one after another, and those still running log every failed call to
	// the ones already gone, which says nothing about a real problem.
	stopping *atomic.Bool
	// beforeExit runs before Fatal ends the process, which skips Run's
	// deferred cleanup, so that the ready file does not outlive the server.
	beforeExit func()
}

var _ log.Logger = serverLogger{}

func newServerLogger(l *slog.Logger) serverLogger {
	if l == nil {
		l = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return serverLogger{out: l, stopping: new(atomic.Bool)}
}

func (s serverLogger) Debug(msg string, tags ...tag.Tag) {}
func (s serverLogger) Info(msg string, tags ...tag.Tag)  {}
func (s serverLogger) Warn(msg string, tags ...tag.Tag)  { s.log(slog.LevelWarn, msg, tags) }
func (s serverLogger) Error(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }

// DPanic only logs, as zap does outside development mode.
func (s serverLogger) DPanic(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }

// Panic and Fatal must not return: the server calls them where it cannot go
// on (a listener that failed to bind is used right after a Fatal), as zap
// would panic or exit there.
func (s serverLogger) Panic(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
	panic("temporal server: " + msg)
}

func (s serverLogger) Fatal(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
	if s.beforeExit != nil {
		s.beforeExit()
	}
	os.Exit(1)
}

func (s serverLogger) log(level slog.Level, msg string, tags []tag.Tag) {
	ctx := context.Background()
	if s.stopping.Load() || !s.out.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, len(tags))
	for _, t := range tags {
		attrs = append(attrs, slog.Any(t.Key(), t.Value()))
	}
	s.out.LogAttrs(ctx, level, msg, attrs...)
}
