package runs

import (
	"context"
	"errors"
)

// MultiSink fans every call out to sinks in order. Every sink is called even
// when an earlier one fails; the errors are joined. Nil sinks are skipped.
func MultiSink(sinks ...Sink) Sink {
	var s multiSink
	for _, k := range sinks {
		if k != nil {
			s = append(s, k)
		}
	}
	return s
}

type multiSink []Sink

func (m multiSink) Log(ctx context.Context, row map[string]any) error {
	var errs []error
	for _, s := range m {
		if err := s.Log(ctx, row); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m multiSink) Summary(ctx context.Context, summary map[string]any) error {
	var errs []error
	for _, s := range m {
		if err := s.Summary(ctx, summary); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
