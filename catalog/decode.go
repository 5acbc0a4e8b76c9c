package catalog

import (
	"encoding/json"
	"reflect"

	"sigs.k8s.io/yaml"
)

// unmarshalStrict decodes catalog YAML into c as yaml.UnmarshalStrict
// would if it followed embedded structs (Target's Sections) the way
// encoding/json does. It does not: it looks a promoted field's type up on
// the embedded struct itself (kubernetes-sigs/yaml#58), so the values under
// jwt:, postgres:, ... would lose the hint that makes `namespace: n` or
// `role: 123` a string, and encoding/json would name the embedded struct in
// the field path of its errors (targets.Sections.postgres.port). The file
// is therefore decoded into a copy of the types with the embedded structs
// flattened, which reads exactly like the pre-Sections Target did, and
// copied over.
func unmarshalStrict(b []byte, c *Catalog) error {
	flat := reflect.New(flatType(reflect.TypeFor[Catalog]()))
	if err := yaml.UnmarshalStrict(b, flat.Interface()); err != nil {
		return err
	}
	copyFlat(reflect.ValueOf(c).Elem(), flat.Elem())
	return nil
}

// flatType returns t with every untagged embedded struct replaced by the
// fields it promotes, through pointers, slices and structs. Types that
// decode themselves, and types without embedded structs, are returned as
// they are, so their methods and unexported fields survive.
func flatType(t reflect.Type) reflect.Type {
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return t
	}
	switch t.Kind() {
	case reflect.Pointer:
		if e := flatType(t.Elem()); e != t.Elem() {
			return reflect.PointerTo(e)
		}
	case reflect.Slice:
		if e := flatType(t.Elem()); e != t.Elem() {
			return reflect.SliceOf(e)
		}
	case reflect.Struct:
		fields, changed := flatFields(t)
		if changed {
			return reflect.StructOf(fields)
		}
	}
	return t
}

// flatFields returns the fields of struct t as flatType rebuilds them,
// and whether any differs from t's own.
func flatFields(t reflect.Type) ([]reflect.StructField, bool) {
	var out []reflect.StructField
	changed := false
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Tag.Get("json") == "" && f.Type.Kind() == reflect.Struct {
			inner, _ := flatFields(f.Type)
			out = append(out, inner...)
			changed = true
			continue
		}
		if ft := flatType(f.Type); ft != f.Type {
			f.Type = ft
			changed = true
		}
		f.Index, f.Offset = nil, 0
		out = append(out, f)
	}
	return out, changed
}

// copyFlat sets dst, of a type flatType flattened, from src, of the
// flattened type: fields match by name, which finds promoted fields too.
func copyFlat(dst, src reflect.Value) {
	if dst.Type() == src.Type() {
		dst.Set(src)
		return
	}
	switch src.Kind() {
	case reflect.Pointer:
		if !src.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
			copyFlat(dst.Elem(), src.Elem())
		}
	case reflect.Slice:
		if !src.IsNil() {
			dst.Set(reflect.MakeSlice(dst.Type(), src.Len(), src.Len()))
			for i := range src.Len() {
				copyFlat(dst.Index(i), src.Index(i))
			}
		}
	case reflect.Struct:
		for i := range src.NumField() {
			copyFlat(dst.FieldByName(src.Type().Field(i).Name), src.Field(i))
		}
	}
}
