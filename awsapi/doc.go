// Package awsapi owns ecr-ptc's setup of the AWS SDK:
// loading the AWS configuration ([LoadConfig]: the default credential
// chain, the region from the caller, the environment or the instance
// metadata), building the ECR, ECR Public, STS, EC2 and Secrets Manager
// clients ([NewECR], [NewClients]), the SDK-backed token API of package
// credentials ([SDKTokenAPI], [NewProvider], and [ServeTokenFetcher] for
// the ecr-ptc-token program), and the one classifier of AWS errors
// ([Classify], [Code], [Fix]) that credentials, rules, doctor and warm turn
// into advice.
//
// Other packages reach AWS through the clients it builds and define the
// small interfaces of the calls they make (in the SDK's request and
// response types), so their tests use fakes or a local ECR.
//
// This package must never be imported by credentials (docker-credential-ecr-ptc
// must start without the SDK) or by mirror, and it must never log, print or
// return in an error message a token, a secret access key or an access key
// ID: token errors pass through credentials.RedactError.
package awsapi
