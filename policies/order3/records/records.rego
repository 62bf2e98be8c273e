# METADATA
# title: Based-on records
# description: >-
#   A draft names the versions of the inventory records it was based on
#   (affected_records); the service sends each with the version stored now as
#   input.context.records. Work based on a record that has changed since is refused, so
#   an approval or an execution never applies a stale draft.
package order3.records

# changed: the based-on records whose version is no longer the one the draft names, as
# {type, id, based_on_version, current_version}; current_version is null for a record
# that no longer exists.
changed contains record if {
	_context_valid

	some record in input.context.records
	record.based_on_version != null
	record.current_version != record.based_on_version
}

# METADATA
# title: Based-on record changed
# description: >-
#   A draft cannot be submitted, patched, approved or executed while a record it names a
#   version of is at another version: whoever drafted it did not see that change. The
#   requester patches the draft with the versions it is now based on, which drops the
#   approvals given to the old content. One reason per changed record; its facts'
#   current_version is null for a record that no longer exists.
# custom:
#   id: records.changed_since_drafted
#   explanation: the {record_type} {record_id} has changed since the draft was based on its version {based_on_version}
deny contains reason if {
	input.action in {"submit", "patch", "approve", "execute"}

	some record in changed

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("the draft is based on records that have changed since: %v", [_describe(record)]),
		"facts": {
			"record_type": record.type,
			"record_id": record.id,
			"based_on_version": record.based_on_version,
			"current_version": record.current_version,
		},
	}
}

# METADATA
# title: Based-on records context is malformed
# description: >-
#   input.context.records must be an array of {type, id, based_on_version,
#   current_version}, versions being positive integers or null; otherwise staleness
#   cannot be judged and nothing is allowed.
# custom:
#   id: records.context_invalid
deny contains reason if {
	input.action in {"submit", "patch", "approve", "execute"}
	not _context_valid

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("context.records %v is not a list of {type, id, based_on_version, current_version}", [object.get(input, ["context", "records"], "<missing>")]),
	}
}

_context_valid if {
	is_array(input.context.records)
	every record in input.context.records {
		is_string(record.type)
		is_string(record.id)
		_version(record.based_on_version)
		_version(record.current_version)
	}
}

_version(value) if value == null

_version(value) if {
	is_number(value)
	value == floor(value)
	value >= 1
}

_describe(record) := sprintf("%v %v is at version %d, not %d", [record.type, record.id, record.current_version, record.based_on_version]) if {
	record.current_version != null
}

_describe(record) := sprintf("%v %v no longer exists (the draft is based on version %d)", [record.type, record.id, record.based_on_version]) if {
	record.current_version == null
}
