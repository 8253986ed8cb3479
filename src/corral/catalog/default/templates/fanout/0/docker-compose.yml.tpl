version: '2'
services:
{{- range $index, $unused := until (atoi .Values.WORKERS) }}
  worker-{{ $index }}:
    image: corral/busybox:latest
    environment:
      WORKER: "{{ $index }}"
      STACK: "{{ $.Stack.Name }}"
    command:
      - sh
      - -c
      - while true; do echo "worker $$WORKER of $$STACK"; sleep 60; done
{{- end }}
{{- if eq .Values.WITH_WEB "true" }}
  web:
    image: corral/busybox:latest
    environment:
      TITLE: ${TITLE}
    command:
      - sh
      - -c
      - 'mkdir -p /www && echo "$$TITLE: {{ .Values.WORKERS }} workers" > /www/index.html && exec httpd -f -p 80 -h /www'
{{- end }}
