package registry

// ValidateChange reports whether Scope.Join (or SetMeta) would accept group,
// member and meta, without changing anything: the same checks, in the same
// words. A caller that must record a change durably before making it (cpgd
// writes every registration to disk before it answers) refuses bad input
// here, so a refused change never reaches the disk.
func ValidateChange(group, member string, meta Meta) error {
	if err := validateGroupName(group); err != nil {
		return err
	}
	return validateMember(member, meta)
}
