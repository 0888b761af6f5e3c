package evidence

import whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"

// FromProto reads the photos an event names.
func FromProto(ps []*whistlev1.Photo) []Photo {
	if len(ps) == 0 {
		return nil
	}
	out := make([]Photo, 0, len(ps))
	for _, p := range ps {
		out = append(out, Photo{ID: p.GetId(), Digest: p.GetDigest(), ContentType: p.GetContentType(), Size: p.GetSize()})
	}
	return out
}

// ToProto writes photos for an event or a view.
func ToProto(ps []Photo) []*whistlev1.Photo {
	if len(ps) == 0 {
		return nil
	}
	out := make([]*whistlev1.Photo, 0, len(ps))
	for _, p := range ps {
		out = append(out, &whistlev1.Photo{Id: p.ID, Digest: p.Digest, ContentType: p.ContentType, Size: p.Size})
	}
	return out
}
