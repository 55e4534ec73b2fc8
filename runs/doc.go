// Package runs writes and reads the run record: the folder a training run
// leaves under <workdir>/runs/<run.id>/. The format of every file is
// specified in docs/format/run-record.md; in short:
//
//	config.yaml     the fully resolved configuration (configs.Config.Marshal)
//	run.json        identity and state: running, finished, failed, crashed, stopped
//	history.jsonl   one JSON object per optimizer step, appended
//	summary.json    last value of every key plus best/*, test/*, perf/* (replaced atomically)
//	output.log      the CLI's log, teed
//	checkpoints/    best.safetensors, best.yaml, best.json (written by experiments)
//	plots/          loss.png, loss.svg (written by plots)
//
// # Writing
//
// Create claims the folder and returns a Recorder, which implements the
// trainer's Sink (experiments.Sink): Log appends a history row, Summary
// replaces summary.json. Finish records how the run ended. The JSON is W&B's
// dialect: NaN, Infinity and -Infinity are written as bare literals.
//
// # Durability
//
// Every history row is handed to the operating system before Log returns,
// so a crash of the process loses no row; history.jsonl is fsynced at each
// epoch end (a row with train/epoch_loss) and at Finish, so a power cut
// loses at most the current epoch. summary.json and run.json are written to
// a temporary file, fsynced and renamed over the old file. A reader skips a
// last history line left incomplete by a crash.
//
// # Reading
//
// Open and List return Runs, whose History, Summary, Meta and Config read
// the files on each call, so they also work on a run that is still
// training.
package runs
