fn main() {
    // Built by a later issue; see docs/architecture.md.
}
