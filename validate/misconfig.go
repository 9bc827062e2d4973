package validate

// misconfigured panics with the message the package documentation
// promises for a configuration mistake: the option or call as it was
// made, then what is wrong with it.
func misconfigured(call, why string) {
	panic("validate: " + call + ": " + why)
}

// nilOr spells an argument in a misconfigured call: "nil" when it is, its
// name otherwise.
func nilOr(isNil bool, name string) string {
	if isNil {
		return "nil"
	}
	return name
}
