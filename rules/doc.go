// Package rules finds the pull-through cache rules in effect on this host and
// builds the rewrite.Mapping every other part of ecr-ptc uses.
//
// Rules come, in increasing precedence, from the account
// (DescribePullThroughCacheRules, all pages), the config file's [[rules]],
// and --rule flags. The registry host comes from --registry, the config
// file, or the proxyEndpoint of GetAuthorizationToken. Each successful
// discovery is saved to the state directory; when the ECR API cannot be
// reached (a host booting before its network is up, an API outage), the
// saved rule set is used instead, with a warning.
//
// It also changes the account on request: [Create] adds a pull-through
// cache rule and [GrantImport] merges an import grant into the registry
// policy ([MergeGrant] is the pure policy editor). The AWS clients come
// from package awsapi, which also classifies AWS errors; this package
// talks to ECR only through the small interfaces of api.go, and every
// wait on the network is bounded ([Loader.Timeout]).
//
// This package never logs a token, never writes a file but the saved rule
// set, and never changes the account unless asked to (create, grant).
package rules
