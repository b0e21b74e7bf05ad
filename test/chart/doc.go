// Package chart renders the Helm chart in charts/ecr-ptc with the real helm
// binary (helm.sh/helm/v3, built by .ci/install-deps outside this module)
// and decodes every object it renders strictly into k8s.io/api types:
// a field the API does not know is an error, as the API server's strict
// field validation would report it.
//
// Its tests render the chart for the value sets in charts/ecr-ptc/ci and
// for values a person can get wrong, and run helm lint. The end-to-end
// test in test/e2e uses [Render] to run the rendered DaemonSet's
// containers under a real containerd. It never talks to a cluster.
package chart
