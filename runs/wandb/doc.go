// Package wandb streams mami runs to any server that speaks the W&B wire protocol (wandb.ai, W&B Server,
// `mami serve`), the way the official clients do: GraphQL for the run's metadata (Viewer,
// ServerFeaturesQuery, UpsertBucket, RunResumeStatus, CreateRunFiles), the file_stream endpoint for history,
// summary, system metrics and console output, and PUTs to upload URLs for files.
//
// # Local first
//
// The run directory written by the local recorder is the write-ahead log. A Stream's Log and Summary only
// wake the background sender, which reads history.jsonl, wandb-events.jsonl, output.log and summary.json
// from the offsets the server has acknowledged, in bounded chunks, and records each acknowledgement in
// wandb-sync.json (replaced atomically). A re-sent batch carries the same line offsets, so the server never
// duplicates a row, and whatever a stream could not send, Sync sends later.
//
// # Failures
//
// Requests are retried with capped exponential backoff and jitter (see RetryPolicy); Retry-After and
// RateLimit-Remaining/RateLimit-Reset are honoured; 400, 401, 403, 404, 409, 410, 413, 422 and 501 are not
// retried. A refused API key is one error at Start (ErrUnauthorized). An unreachable server never holds up
// training: the sender keeps trying in the background. Finish tries again at once, says in one log line
// what it waits for, gives up after FlushTimeout (sooner when connections are refused again and again) and
// returns an *IncompleteError naming `mami sync`.
//
// # Records too large
//
// No file_stream request is larger than Options.MaxRequestBytes (10 MiB): a larger backlog goes out in
// several. A request the server refuses with 413 Request Entity Too Large is cut in halves, again and
// again; a single record refused so (or larger than MaxRequestBytes) is skipped: the acknowledged offsets
// move past it, it is logged and listed in wandb-sync.json (see SkippedRecord), never sent again, and the
// records after it are. It stays in the run directory.
//
// The wandbtest package is a recording fake server with fault injection for tests.
package wandb
