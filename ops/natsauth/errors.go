package natsauth

import "errors"

// ErrOptions wraps every problem of [Options]: a folder missing, a user not
// in the list. Init writes nothing then.
var ErrOptions = errors.New("invalid natsauth options")
