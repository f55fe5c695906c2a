package eid.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import eid.errors.v1.ErrorReasonOuterClass.ErrorReason;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A failed eid call, decoded from the Google rich error model: the status code, and from the
 * {@code grpc-status-details-bin} trailer the {@code google.rpc.ErrorInfo} reason, the {@code
 * google.rpc.BadRequest} field violations and the {@code google.rpc.RetryInfo} delay.
 *
 * <p>Branch on {@link #code()} for the broad class of failure and on {@link #errorReason()} (or
 * the {@link #reason()} string) for the exact cause; the message is for humans and may change.
 */
public final class EidException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** The trailer that carries a serialized {@code google.rpc.Status}. */
  public static final Metadata.Key<byte[]> STATUS_DETAILS_KEY =
      Metadata.Key.of("grpc-status-details-bin", Metadata.BINARY_BYTE_MARSHALLER);

  /** The ErrorInfo domain of eid's own errors. */
  public static final String ERROR_DOMAIN = "eid.v1";

  /** One invalid field of the request, as {@code google.rpc.BadRequest.FieldViolation} says. */
  public static final class FieldViolation {
    private final String field;
    private final String reason;
    private final String description;

    public FieldViolation(String field, String reason, String description) {
      this.field = field;
      this.reason = reason;
      this.description = description;
    }

    /** The request field's path, e.g. {@code personal_id}. */
    public String field() {
      return field;
    }

    /** This field's own ErrorReason name, e.g. {@code PERSONAL_ID_MALFORMED}. */
    public String reason() {
      return reason;
    }

    public String description() {
      return description;
    }

    @Override
    public String toString() {
      return field + ": " + reason;
    }
  }

  private final Status.Code code;
  private final String reason;
  private final String domain;
  private final Map<String, String> metadata;
  private final List<FieldViolation> fieldViolations;
  private final Duration retryDelay;

  private EidException(
      Status.Code code,
      String message,
      String reason,
      String domain,
      Map<String, String> metadata,
      List<FieldViolation> fieldViolations,
      Duration retryDelay,
      Throwable cause) {
    super(message, cause);
    this.code = code;
    this.reason = reason;
    this.domain = domain;
    this.metadata = Collections.unmodifiableMap(metadata);
    this.fieldViolations = Collections.unmodifiableList(fieldViolations);
    this.retryDelay = retryDelay;
  }

  /**
   * Decodes a failed call; a missing or garbled trailer leaves only the status code. The trailer
   * is read as the Python and Node SDKs read it: its details count only when its code is the
   * call's (gRPC's rule; one that contradicts the status line is another failure's, a proxy's);
   * the message is the status line's, the trailer's only when the line has none (a proxy may
   * rewrite grpc-message, which does not make the details any less the call's). The first
   * ErrorInfo with a reason gives reason, domain and metadata, and no other ErrorInfo counts;
   * BadRequest violations add up; the last readable RetryInfo gives the delay.
   */
  public static EidException from(StatusRuntimeException e) {
    Status status = e.getStatus();
    com.google.rpc.Status rich = richStatus(status, e.getTrailers());
    String message = status.getDescription();
    if (message == null || message.isEmpty()) {
      message = rich != null && !rich.getMessage().isEmpty() ? rich.getMessage() : "";
    }
    String reason = null;
    String domain = null;
    Map<String, String> metadata = new LinkedHashMap<>();
    List<FieldViolation> violations = new ArrayList<>();
    Duration retryDelay = null;
    for (Any detail : rich == null ? Collections.<Any>emptyList() : rich.getDetailsList()) {
      try {
        if (detail.is(ErrorInfo.class)) {
          // The first ErrorInfo with a reason is eid's: a proxy's appended one must not replace
          // it, nor a reasonless one (AIP-193 requires a reason) add its domain or metadata.
          ErrorInfo info = detail.unpack(ErrorInfo.class);
          if (reason == null && !info.getReason().isEmpty()) {
            reason = info.getReason();
            domain = info.getDomain().isEmpty() ? null : info.getDomain();
            metadata.putAll(info.getMetadataMap());
          }
        } else if (detail.is(BadRequest.class)) {
          BadRequest bad = detail.unpack(BadRequest.class);
          for (BadRequest.FieldViolation v : bad.getFieldViolationsList()) {
            violations.add(new FieldViolation(v.getField(), v.getReason(), v.getDescription()));
          }
        } else if (detail.is(RetryInfo.class)) {
          com.google.protobuf.Duration d = detail.unpack(RetryInfo.class).getRetryDelay();
          retryDelay = Duration.ofSeconds(d.getSeconds(), d.getNanos());
        }
      } catch (InvalidProtocolBufferException | ArithmeticException ignored) {
        // A damaged detail is skipped; the others and the status code still count. A RetryInfo
        // past java.time.Duration's range (nanos beyond a second at its ends) is damaged too.
      }
    }
    String shown = message.isEmpty() ? status.getCode().name() : message;
    return new EidException(
        status.getCode(), shown, reason, domain, metadata, violations, retryDelay, e);
  }

  private static com.google.rpc.Status richStatus(Status status, Metadata trailers) {
    byte[] raw = trailers == null ? null : trailers.get(STATUS_DETAILS_KEY);
    if (raw == null) {
      return null;
    }
    try {
      com.google.rpc.Status rich = com.google.rpc.Status.parseFrom(raw);
      // A trailer that contradicts the status line is not trusted.
      return rich.getCode() == status.getCode().value() ? rich : null;
    } catch (InvalidProtocolBufferException garbled) {
      return null;
    }
  }

  public Status.Code code() {
    return code;
  }

  /** The ErrorInfo reason as sent, e.g. {@code "SHARE_ALREADY_REDEEMED"}; null if none. */
  public String reason() {
    return reason;
  }

  /**
   * The reason as the protos' enum; {@code ERROR_REASON_UNSPECIFIED} when there is none (e.g.
   * UNAVAILABLE because the server cannot be reached), when it is another domain's than {@code
   * eid.v1}, or when a newer server sent one this build does not know: then treat the error by
   * its status code, {@link #reason()} still names it.
   */
  public ErrorReason errorReason() {
    if (reason == null || (domain != null && !ERROR_DOMAIN.equals(domain))) {
      // None, or another domain's (a proxy's): the same word may mean something else there.
      return ErrorReason.ERROR_REASON_UNSPECIFIED;
    }
    com.google.protobuf.Descriptors.EnumValueDescriptor value =
        ErrorReason.getDescriptor().findValueByName(reason);
    return value == null ? ErrorReason.ERROR_REASON_UNSPECIFIED : ErrorReason.valueOf(value);
  }

  /** The ErrorInfo domain ({@code "eid.v1"} for eid's own errors); null if none. */
  public String domain() {
    return domain;
  }

  /** The ErrorInfo metadata, e.g. {@code incident} of an INTERNAL error. */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** The invalid fields of an INVALID_ARGUMENT, in the server's order. */
  public List<FieldViolation> fieldViolations() {
    return fieldViolations;
  }

  /** How long to wait before retrying, when the server said (RESOURCE_EXHAUSTED and others). */
  public Optional<Duration> retryDelay() {
    return Optional.ofNullable(retryDelay);
  }

  @Override
  public String toString() {
    return "EidException: " + code + (reason == null ? "" : " " + reason) + ": " + getMessage();
  }
}
