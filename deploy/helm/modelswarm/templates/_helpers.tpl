{{/* Names and labels. */}}
{{- define "modelswarm.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "modelswarm.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: include "modelswarm.selector" (list $ "seeder"). */}}
{{- define "modelswarm.selector" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* The image, pinned: values image.tag or the chart's appVersion, never "latest". */}}
{{- define "modelswarm.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- if or (eq $tag "latest") (eq $tag "") -}}
{{- fail "image.tag must pin a release (default: the chart appVersion), not \"latest\"" -}}
{{- end -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}

{{- define "modelswarm.seederService" -}}
{{- printf "%s-seeder" (include "modelswarm.fullname" .) -}}
{{- end -}}

{{/* This release's seeder as a bootstrap multiaddr: the headless Service's DNS name, resolving to the pod IP. */}}
{{- define "modelswarm.seederBootstrap" -}}
{{- printf "/dns4/%s.%s.svc.%s/tcp/%v/p2p/%s" (include "modelswarm.seederService" .) .Release.Namespace .Values.clusterDomain .Values.swarm.libp2pPort .Values.seeder.peerId -}}
{{- end -}}

{{/* "true" when the bulk path must be off: turned off, or fenced in by a NetworkPolicy it cannot pass. */}}
{{- define "modelswarm.noBulk" -}}
{{- if .Values.swarm.bulk.port -}}
{{- fail "swarm.bulk.port needs the planned `--bulk-port` flag, which modelswarm does not have yet; leave it null" -}}
{{- end -}}
{{- if or (not .Values.swarm.bulk.enabled) .Values.networkPolicy.enabled -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/* Env every swarm member (seeder, agent, inference fetch) shares. Boolean options act on the variable's
presence (commander ignores its value: MODELSWARM_NO_BULK=false turns bulk off too), so set them or leave them out. */}}
{{- define "modelswarm.memberEnv" -}}
- name: MODELSWARM_JSON
  value: "true"
{{- if eq (include "modelswarm.noBulk" .) "true" }}
- name: MODELSWARM_NO_BULK
  value: "true"
{{- end }}
{{- end -}}

{{/* Where fetchers get trust and bootstrap: the swarm ConfigMap. Fails while no seeder peer id is known. */}}
{{- define "modelswarm.swarmEnvFrom" -}}
{{- if and (not .Values.seeder.peerId) (not .Values.swarm.extraTrust) -}}
{{- fail "set seeder.peerId (print it with `node deploy/seeder-key.ts KEYFILE`) or swarm.extraTrust: fetchers need a trusted seeder" -}}
{{- end -}}
- configMapRef:
    name: {{ include "modelswarm.fullname" . }}-swarm
{{- end -}}

{{- define "modelswarm.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}

{{- define "modelswarm.securityContext" -}}
{{- toYaml .Values.securityContext -}}
{{- end -}}
