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
// This package never logs a token and never writes anything but the saved
// rule set.
package rules
