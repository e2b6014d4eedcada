# A dependency of produce.sh, copied beside it.
first_word() { head -n 1 -- "$1"; }
