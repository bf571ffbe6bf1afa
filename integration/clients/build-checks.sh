# Image builds through the runtime (issue 22, "real clients for build jobs"): a Containerfile's RUN
# steps run as containers of the runtime under test. Sourced by run.sh; used by buildah.sh
# (`buildah bud --runtime`) and podman.sh (`podman --runtime … build`). The engine sets BLD (its
# build command, an array), and defines img_cat IMAGE PATH (a file of a built image, read from the
# engine's storage, not through the runtime) and img_exists IMAGE, both in its main function.

# build_checks: what the RUN steps did is in the image, their output is the build's, a failing RUN's
# exit code is reported and tags nothing, and --network none leaves RUN only lo.
build_checks() {
  local ctx=$T/build-$ENGINE out rc before calls want
  mkdir -p "$ctx/ok" "$ctx/fail"
  cat > "$ctx/ok/Containerfile" <<EOF
FROM $IMAGE
RUN echo "run-step-1 uid=\$(id -u)" > /built.txt
RUN echo run-step-2 >> /built.txt && echo "output of a RUN step: \$((6 * 7))"
RUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' ' > /netdevs; if nc -w 2 192.0.2.1 80 </dev/null; then echo connected; else echo no-network; fi > /connect
EOF
  before=$(wc -l < "$ARGV_LOG")
  out=$("${BLD[@]}" --network none -t "localhost/testudo-built-$ENGINE:1" -f "$ctx/ok/Containerfile" "$ctx/ok" 2>&1)
  rc=$?
  is "build: a 3-RUN Containerfile builds with --network none" 0 "$rc" "$out"
  # Each RUN step is a container of the runtime under test.
  calls=$(tail -n +"$((before + 1))" "$ARGV_LOG" | grep -cE ' (create|run) ')
  if [ "$calls" -ge 3 ]; then ok "build: the RUN steps went through the runtime under test ($calls create/run calls)"
  else notok "build: the RUN steps went through the runtime under test" "create/run calls seen: $calls" "$(tail -n +"$((before + 1))" "$ARGV_LOG" | head -20)"; fi
  contains "build: a RUN step's output is the build's output" "output of a RUN step: 42" "$out"
  want=$(printf 'run-step-1 uid=0\nrun-step-2')
  is "build: the image holds what the RUN steps wrote (/built.txt)" "$want" "$(img_cat "localhost/testudo-built-$ENGINE:1" /built.txt 2>&1)"
  is "build: --network none: a RUN step sees only lo" "lo " "$(img_cat "localhost/testudo-built-$ENGINE:1" /netdevs 2>&1)"
  is "build: --network none: a RUN step cannot connect out" "no-network" "$(img_cat "localhost/testudo-built-$ENGINE:1" /connect 2>&1)"

  cat > "$ctx/fail/Containerfile" <<EOF
FROM $IMAGE
RUN echo before the failing step
RUN echo failing now; exit 7
RUN echo never > /never.txt
EOF
  out=$("${BLD[@]}" --network none -t "localhost/testudo-failed-$ENGINE:1" -f "$ctx/fail/Containerfile" "$ctx/fail" 2>&1)
  rc=$?
  is "build: a failing RUN's exit code 7 is the build's exit code" 7 "$rc" "$out"
  like "build: a failing RUN's exit code 7 is in the build's error" 'exit status 7' "$out"
  contains "build: the failing RUN's own output is shown" "failing now" "$out"
  unlike "build: no step after the failing RUN ran" 'STEP 4/4|STEP 4:' "$out"
  if img_exists "localhost/testudo-failed-$ENGINE:1"; then notok "build: a failed build tags no image" "the image exists"
  else ok "build: a failed build tags no image"; fi
}
