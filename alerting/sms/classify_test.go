package sms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"
)

// timeoutError is a net.Error that timed out.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		retry bool
		after time.Duration
	}{
		{"nil", nil, false, 0},
		{"canceled", context.Canceled, false, 0},
		{"canceled in a url.Error", &url.Error{Op: "Post", URL: "https://x", Err: context.Canceled}, false, 0},
		{"attempt deadline", context.DeadlineExceeded, true, 0},
		{"wrapped deadline", fmt.Errorf("notify: %w", context.DeadlineExceeded), true, 0},
		{"deadline in a url.Error", &url.Error{Op: "Post", URL: "https://x", Err: context.DeadlineExceeded}, true, 0},
		{"net timeout", &url.Error{Op: "Post", URL: "https://x", Err: timeoutError{}}, true, 0},
		{"os deadline", os.ErrDeadlineExceeded, true, 0},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true, 0},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true, 0},
		{"closed early", &url.Error{Op: "Post", URL: "https://x", Err: io.EOF}, true, 0},
		{"truncated", io.ErrUnexpectedEOF, true, 0},
		{"retryable *Error", &Error{Provider: "aliyun", Code: "isv.BUSINESS_LIMIT_CONTROL", Retryable: true, RetryAfter: time.Minute}, true, time.Minute},
		{"wrapped retryable *Error", fmt.Errorf("route 7: %w", &Error{Provider: "tencent", Retryable: true, RetryAfter: 30 * time.Second}), true, 30 * time.Second},
		{"permanent *Error", &Error{Provider: "aliyun", Code: "isv.MOBILE_NUMBER_ILLEGAL"}, false, 0},
		{"permanent *Error over a timeout", &Error{Provider: "x", Err: context.DeadlineExceeded}, false, 0},
		{"anything else", errors.New("x509: certificate signed by unknown authority"), false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			retry, after := Classify(tc.err)
			if retry != tc.retry || after != tc.after {
				t.Errorf("Classify(%v) = %v, %v; want %v, %v", tc.err, retry, after, tc.retry, tc.after)
			}
		})
	}
}

func TestErrorTextAndUnwrap(t *testing.T) {
	cause := errors.New("boom")
	e := &Error{Provider: "aliyun", Status: 400, Code: "SignatureDoesNotMatch", Message: "mismatch", RequestID: "R9", Err: cause}
	if want := "sms aliyun: HTTP 400: SignatureDoesNotMatch: mismatch (request R9): boom"; e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
	if !errors.Is(e, cause) {
		t.Error("Unwrap does not reach the cause")
	}
}
