# Sourced by the perf scripts: installs the reference servers and tools they
# run from Debian's packages when a command is missing, so a fresh machine
# needs nothing installed by hand. Usage: need_tools nginx wrk valgrind
need_tools() {
  local missing=() tool package
  for tool in "$@"; do
    command -v "$tool" > /dev/null 2>&1 && continue
    case $tool in
      nginx) package=nginx-light ;;
      taskset) package=util-linux ;;
      *) package=$tool ;;
    esac
    missing+=("$package")
  done
  [[ ${#missing[@]} == 0 ]] && return 0
  echo "installing ${missing[*]} (Debian packages)" >&2
  local sudo=()
  [[ $(id -u) != 0 ]] && sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" > /dev/null ||
    { "${sudo[@]}" apt-get update -q > /dev/null &&
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" > /dev/null; }
}
