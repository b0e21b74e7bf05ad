FROM nginx:1.27
# comment
FROM  alpine:3.20	AS Tools
COPY --from=tools /bin/sh /bin/sh
FROM tools
