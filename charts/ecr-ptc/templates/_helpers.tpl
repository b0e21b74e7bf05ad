{{/* Name of the chart's objects. */}}
{{- define "ecr-ptc.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ecr-ptc.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ecr-ptc.labels" -}}
{{ include "ecr-ptc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "ecr-ptc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ecr-ptc.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ecr-ptc.image" -}}
{{- if not .Values.image.repository -}}
{{- fail "image.repository is empty: push the image (make image) to your ECR and set image.repository, such as 123456789012.dkr.ecr.us-east-1.amazonaws.com/ecr-ptc" -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* --registry and --rule flags, one YAML list item each. */}}
{{- define "ecr-ptc.mappingArgs" -}}
{{- if not .Values.registry -}}
{{- fail "registry is empty: set it to the ECR host of the pull-through cache, such as --set registry=123456789012.dkr.ecr.us-east-1.amazonaws.com" -}}
{{- end }}
- --registry
- {{ .Values.registry | quote }}
{{- range $up, $prefix := .Values.rules }}
- --rule
- {{ printf "%s=%s" $up $prefix | quote }}
{{- end }}
{{- end -}}

{{- define "ecr-ptc.mirrorURL" -}}
{{- printf "http://127.0.0.1:%d" (int .Values.mirror.port) -}}
{{- end -}}

{{/* The node setup command: setup (hosts.toml and config_path) or hosts (hosts.toml only). */}}
{{- define "ecr-ptc.setupCommand" -}}
- /usr/bin/ecr-ptc
{{- if .Values.node.editContainerdConfig }}
- setup
- --engines
- containerd
- --no-service
- --containerd-config
- {{ printf "%s/config.toml" .Values.node.containerdConfigDir | quote }}
- --certs-dir
{{- else }}
- hosts
- --dir
{{- end }}
- {{ .Values.node.certsDir | quote }}
- --root
- /host
- --mirror-url
- {{ include "ecr-ptc.mirrorURL" . | quote }}
{{ include "ecr-ptc.mappingArgs" . }}
{{- end -}}

{{- define "ecr-ptc.hostMounts" -}}
- name: containerd-config
  mountPath: {{ printf "/host%s" .Values.node.containerdConfigDir | quote }}
{{- if not (hasPrefix (printf "%s/" .Values.node.containerdConfigDir) .Values.node.certsDir) }}
- name: certs-d
  mountPath: {{ printf "/host%s" .Values.node.certsDir | quote }}
{{- end }}
# ecr-ptc keeps its undo journal in <root>/var/lib/ecr-ptc/undo: that
# is the node's; the rest of <root>/var/lib/ecr-ptc (the saved rule set)
# stays in the pod, so that removal leaves nothing of it on the node.
- name: state
  mountPath: /host/var/lib/ecr-ptc
- name: node-undo
  mountPath: /host/var/lib/ecr-ptc/undo
{{- end -}}

{{- define "ecr-ptc.securityContext" -}}
{{- if .Values.node.manage }}
# Root without capabilities: it writes root-owned files below /host, and
# nothing else.
runAsUser: 0
runAsGroup: 0
runAsNonRoot: false
{{- else }}
# The image's own unprivileged user: no node file to write.
runAsUser: 65532
runAsGroup: 65532
runAsNonRoot: true
{{- end }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
