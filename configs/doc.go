// Package configs defines the configuration of a mami experiment run, loads it strictly and
// validates it.
//
// # Sources and precedence
//
// Load layers, lowest precedence first: the built-in defaults (Default, written out with comments in
// the embedded preset default.yaml), one YAML file (or an embedded preset named like "seed"),
// MAMI_ environment variables (train.lr is MAMI_TRAIN_LR, see EnvName), and "key=value" overrides
// (the CLI's repeatable --set). Viper holds the layers; the checks are this package's own.
//
// # Strictness
//
// A key the config does not have is an error naming the key, its file and line and the closest
// known key, never silently ignored: a typo must not fall back to a default. So is a value of the
// wrong type ("train.epochs: want an integer, got "ten"") and, after merging, a value out of range
// ("train.lr: must be > 0, got -1"). Every such problem is a *FieldError; Load and Validate join all
// of them with errors.Join.
//
// # Keys
//
// Keys lists every dot key, Reference documents each (type, default, allowed values, environment
// variable), and Get and Set read and write one key with the same checks, for the sweep engine.
// docs/config.md is the user-facing reference.
package configs
