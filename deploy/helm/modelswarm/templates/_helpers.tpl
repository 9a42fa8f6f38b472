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

{{/* "true" when the bulk path must be off: turned off, or fenced in by a NetworkPolicy that cannot open an
ephemeral port. Fails when the bulk ports (port + index per agent container) overlap the libp2p ports. */}}
{{- define "modelswarm.noBulk" -}}
{{- $bulk := .Values.swarm.bulk -}}
{{- if and $bulk.enabled $bulk.port -}}
{{- $n := 1 -}}
{{- if .Values.agent.enabled -}}{{- $n = max 1 (len .Values.agent.models) -}}{{- end -}}
{{- $l := int .Values.swarm.libp2pPort -}}
{{- $b := int $bulk.port -}}
{{- if and (lt $b (add $l $n)) (lt $l (add $b $n)) -}}
{{- fail (printf "swarm.bulk.port %d..%d overlaps the libp2p ports %d..%d (one of each per agent model): choose another" $b (add $b $n -1) $l (add $l $n -1)) -}}
{{- end -}}
{{- if eq $b (int .Values.seeder.adminPort) -}}
{{- fail "swarm.bulk.port must differ from seeder.adminPort" -}}
{{- end -}}
{{- end -}}
{{- if or (not $bulk.enabled) (and .Values.networkPolicy.enabled (not $bulk.port)) -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/* Env every swarm member (seeder, agent, inference fetch) shares: include "modelswarm.memberEnv" (list $ OFFSET ROLE),
OFFSET the container's index among an agent's (its ports are the base ports + OFFSET), ROLE "seed" or "fetch"
(fetchers read the peer ids of --allow-peers from the swarm ConfigMap, like their trust). Boolean options act on
the variable's presence, so set them or leave them out. */}}
{{- define "modelswarm.memberEnv" -}}
{{- $root := index . 0 -}}
{{- $offset := index . 1 -}}
{{- $role := index . 2 -}}
{{- $swarm := $root.Values.swarm -}}
- name: MODELSWARM_JSON
  value: "true"
{{- if eq (include "modelswarm.noBulk" $root) "true" }}
- name: MODELSWARM_NO_BULK
  value: "true"
{{- else if $swarm.bulk.port }}
- name: MODELSWARM_BULK_PORT
  value: {{ add $swarm.bulk.port $offset | quote }}
{{- end }}
{{- if $swarm.swarmKey.existingSecret }}
- name: MODELSWARM_SWARM_KEY_FILE
  value: "/etc/modelswarm/swarm-key/swarm.key"
{{- end }}
{{- with $swarm.allowCidr }}
- name: MODELSWARM_ALLOW_CIDR
  value: {{ join "," . | quote }}
{{- end }}
{{- if and $swarm.allowPeers (eq $role "seed") }}
- name: MODELSWARM_ALLOW_PEERS
  value: {{ join "," $swarm.allowPeers | quote }}
{{- end }}
{{- end -}}

{{/* The bulk port a member container declares (include "modelswarm.bulkContainerPort" (list $ OFFSET NAME)), if it has one. */}}
{{- define "modelswarm.bulkContainerPort" -}}
{{- $root := index . 0 -}}
{{- if ne (include "modelswarm.noBulk" $root) "true" }}{{- if $root.Values.swarm.bulk.port }}
- name: {{ index . 2 }}
  containerPort: {{ add $root.Values.swarm.bulk.port (index . 1) }}
  protocol: TCP
{{- end }}{{- end }}
{{- end -}}

{{/* The swarm key Secret's mount and volume, in every member. */}}
{{- define "modelswarm.memberMounts" -}}
{{- if .Values.swarm.swarmKey.existingSecret }}
- name: swarm-key
  mountPath: /etc/modelswarm/swarm-key
  readOnly: true
{{- end }}
{{- end -}}

{{- define "modelswarm.memberVolumes" -}}
{{- if .Values.swarm.swarmKey.existingSecret }}
- name: swarm-key
  secret:
    secretName: {{ .Values.swarm.swarmKey.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .Values.swarm.swarmKey.key }}
        path: swarm.key
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
