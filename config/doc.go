// Package config reads ecr-ptc's configuration file, /etc/ecr-ptc/config.toml
// by default.
//
// The file is optional: every key has a default, and the account's
// pull-through cache rules are discovered from ECR. A key the schema does not
// know, or a value of the wrong type, is an error that names the file, the
// line and the key, so a typo never silently turns a setting off.
//
// [ParseRuleFlag] reads the --rule UPSTREAM=PREFIX values of the command
// line into the same [RuleConfig] a [[rules]] entry gives, so that both
// spellings of a rule share one parser.
//
// It also holds the URL form under which the mirror shim serves an upstream
// (MirrorHostURL, MirrorPathPrefix): the shim routes it and hosts writes it
// into hosts.toml, so both read it here rather than import each other.
//
// This package only parses and validates; it never writes the file and never
// calls AWS.
package config
