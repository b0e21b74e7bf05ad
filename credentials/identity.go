package credentials

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
)

// identityEnv lists the environment variables that select which AWS
// credentials the SDK's default chain resolves, or which endpoint issues
// tokens. Their values (never stored, only hashed under a secret salt)
// and the uid make up the identity part of every cache key, so two
// callers with different AWS identities never share a cached token.
var identityEnv = []string{
	"AWS_PROFILE",
	"AWS_DEFAULT_PROFILE",
	"AWS_ACCESS_KEY_ID",
	"AWS_ROLE_ARN",
	"AWS_ROLE_SESSION_NAME",
	"AWS_WEB_IDENTITY_TOKEN_FILE",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONFIG_FILE",
	"AWS_SHARED_CREDENTIALS_FILE",
	"AWS_EC2_METADATA_DISABLED",
	"AWS_ENDPOINT_URL",
	"AWS_ENDPOINT_URL_ECR",
	"AWS_ENDPOINT_URL_ECR_PUBLIC",
	"HOME",
}

// identityMaterial returns the cheap local facts that identify the
// caller's AWS identity: the uid and the values of [identityEnv]. It reads
// no file and makes no network call. The result contains secrets-adjacent
// values (an access key ID) and must only ever be hashed.
func identityMaterial(getenv func(string) string) string {
	var b strings.Builder
	b.WriteString("uid=")
	b.WriteString(strconv.Itoa(os.Getuid()))
	b.WriteByte(0)
	for _, name := range identityEnv {
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(getenv(name))
		b.WriteByte(0)
	}
	return b.String()
}

// keyed returns the hex HMAC-SHA256 of parts under salt, truncated to 32
// hex digits (128 bits), for use as a file or directory name.
func keyed(salt []byte, parts ...string) string {
	m := hmac.New(sha256.New, salt)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))[:32]
}
