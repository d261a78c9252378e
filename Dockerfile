# syncstorm container image: built with the project's own set-up script (the same one CI runs),
# so the build stage installs exactly what scripts/setup.sh lists; the runtime stage keeps the
# binaries and the lab's runtime packages (PostgreSQL 15, HAProxy, iproute2, iptables).
FROM debian:12 AS build
WORKDIR /src
COPY scripts/setup.sh scripts/setup.sh
RUN bash scripts/setup.sh
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSYNCSTORM_TESTS=OFF \
 && cmake --build build -j"$(nproc)" --target syncstorm syncd \
 && strip build/cli/syncstorm build/labstack/syncd

FROM debian:12-slim AS runtime
COPY scripts/setup.sh /usr/local/share/syncstorm/setup.sh
RUN bash /usr/local/share/syncstorm/setup.sh --runtime && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/cli/syncstorm /usr/local/bin/syncstorm
COPY --from=build /src/build/labstack/syncd /usr/local/bin/syncd
COPY --from=build /src/scenarios /usr/local/share/syncstorm/scenarios
ENV SYNCSTORM_SYNCD=/usr/local/bin/syncd
WORKDIR /work
ENTRYPOINT ["syncstorm"]
CMD ["--help"]
