package eid.interop;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import eid.client.EidClient;
import eid.client.EidException;
import eid.client.RetryPolicy;
import eid.errors.v1.ErrorReasonOuterClass.ErrorReason;
import eid.v1.IdentityServiceGrpc;
import eid.v1.IdentityServiceOuterClass.GetVerificationKeysRequest;
import eid.v1.IdentityServiceOuterClass.GetVerificationKeysResponse;
import eid.v1.IdentityServiceOuterClass.QrShareCredential;
import eid.v1.IdentityServiceOuterClass.VerifyRequest;
import eid.v1.IdentityServiceOuterClass.VerifyResponse;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * The Java SDK against a hostile or broken server (or proxy), in process: damaged, contradictory
 * or absurd error details must give an EidException with what could be read, never another
 * exception or a long sleep; retries reuse one request_id and stay within the deadline; the
 * credentials stay out of what is printed. Prints "hostile check: ok" and exits 0, or names the
 * first failed check and exits 1.
 *
 * <p>Run: java -cp clients/java/build/classes:$(cat clients/java/build/runtime-classpath)
 * eid.interop.HostileCheck
 */
public final class HostileCheck {
  private HostileCheck() {}

  /** How the server answers one attempt: a status and the trailer's bytes, or null: success. */
  private static final class Answer {
    final Status status;
    final byte[] trailer;

    Answer(Status status, byte[] trailer) {
      this.status = status;
      this.trailer = trailer;
    }
  }

  private static final Deque<Answer> script = new ArrayDeque<>();
  private static final List<String> seen = Collections.synchronizedList(new ArrayList<>());
  /** The request ids of the calls the server saw cancelled. */
  private static final List<String> cancelled = Collections.synchronizedList(new ArrayList<>());
  /** The QR token of a Verify the server holds unanswered. */
  private static final String HELD = "held";

  private static final class Scripted extends IdentityServiceGrpc.IdentityServiceImplBase {
    @Override
    public void verify(VerifyRequest request, StreamObserver<VerifyResponse> answer) {
      seen.add(request.getRequestId());
      if (HELD.equals(request.getQrShare().getToken())) {
        // Never answered: the client ends it, and the server notes that it saw so.
        ((ServerCallStreamObserver<VerifyResponse>) answer)
            .setOnCancelHandler(() -> cancelled.add(request.getRequestId()));
        return;
      }
      if (!fail(answer)) {
        answer.onNext(VerifyResponse.getDefaultInstance());
        answer.onCompleted();
      }
    }

    @Override
    public void getVerificationKeys(
        GetVerificationKeysRequest request, StreamObserver<GetVerificationKeysResponse> answer) {
      seen.add("");
      if (!fail(answer)) {
        answer.onNext(GetVerificationKeysResponse.getDefaultInstance());
        answer.onCompleted();
      }
    }

    private static boolean fail(StreamObserver<?> answer) {
      Answer next;
      synchronized (script) {
        next = script.poll();
      }
      if (next == null) {
        return false;
      }
      Metadata trailers = new Metadata();
      if (next.trailer != null) {
        trailers.put(EidException.STATUS_DETAILS_KEY, next.trailer);
      }
      answer.onError(next.status.asRuntimeException(trailers));
      return true;
    }
  }

  private static final RetryPolicy QUICK =
      RetryPolicy.builder()
          .initialBackoff(Duration.ofMillis(10))
          .maxBackoff(Duration.ofMillis(50))
          .build();

  public static void main(String[] args) throws Exception {
    String name = InProcessServerBuilder.generateName();
    Server server =
        InProcessServerBuilder.forName(name).directExecutor().addService(new Scripted()).build();
    server.start();
    ManagedChannel channel = InProcessChannelBuilder.forName(name).directExecutor().build();
    try (EidClient eid =
        EidClient.builder("in-process")
            .channel(channel)
            .apiKey("eidk_s3cret")
            .sessionToken("sess_s3cret")
            .officerKey("off_s3cret")
            .retryPolicy(QUICK)
            .build()) {
      checks(eid);
    } finally {
      channel.shutdownNow();
      server.shutdownNow();
    }
    System.out.println("hostile check: ok");
  }

  private static void checks(EidClient eid) throws InterruptedException {
    GetVerificationKeysRequest keys = GetVerificationKeysRequest.getDefaultInstance();
    Supplier<Object> read = () -> eid.asParty(stub -> stub.getVerificationKeys(keys));
    Supplier<Object> verify = () -> eid.verify(VerifyRequest.getDefaultInstance());

    // Damaged trailers: the status code stands.
    byte[] whole = rich(Status.Code.FAILED_PRECONDITION, errorInfo("SHARE_EXPIRED", "eid.v1"));
    Any damaged =
        Any.newBuilder()
            .setTypeUrl("type.googleapis.com/google.rpc.ErrorInfo")
            .setValue(ByteString.copyFrom(new byte[] {0x0a, (byte) 0xff}))
            .build();
    for (byte[] trailer :
        Arrays.asList(
            new byte[] {0x08},
            Arrays.copyOf(whole, whole.length - 3),
            rich(Status.Code.FAILED_PRECONDITION, damaged),
            filled(4096, (byte) 0xff))) {
      EidException e = failure(read, Status.FAILED_PRECONDITION.withDescription("refused"), trailer);
      check(e.code() == Status.Code.FAILED_PRECONDITION && e.reason() == null, "damaged: " + e);
      check("refused".equals(e.getMessage()) && seen.size() == 1, "damaged message: " + e);
    }

    // A trailer whose code contradicts the status line is not this failure's.
    EidException contradicted =
        failure(
            read,
            Status.FAILED_PRECONDITION,
            rich(Status.Code.NOT_FOUND, errorInfo("SHARE_NOT_FOUND", "eid.v1")));
    check(contradicted.reason() == null, "contradicting trailer: " + contradicted);

    // A proxy's ErrorInfo after eid's does not replace it; BadRequests add up.
    EidException proxied =
        failure(
            read,
            Status.INVALID_ARGUMENT,
            rich(
                Status.Code.INVALID_ARGUMENT,
                errorInfo("INVALID_FIELDS", "eid.v1"),
                errorInfo("UPSTREAM", "proxy.example"),
                badRequest("personal_id"),
                badRequest("password")));
    check("INVALID_FIELDS".equals(proxied.reason()), "first ErrorInfo: " + proxied);
    check(proxied.fieldViolations().size() == 2, "BadRequests: " + proxied.fieldViolations());

    // RetryInfo at the ends of a Duration's range: decoded or skipped, never an overflow.
    EidException longest =
        failure(
            read,
            Status.FAILED_PRECONDITION,
            rich(
                Status.Code.FAILED_PRECONDITION,
                errorInfo("SHARE_EXPIRED", "eid.v1"),
                retryInfo(Long.MAX_VALUE, Integer.MAX_VALUE)));
    check("SHARE_EXPIRED".equals(longest.reason()), "longest RetryInfo: " + longest);
    failure(
        read,
        Status.FAILED_PRECONDITION,
        rich(Status.Code.FAILED_PRECONDITION, retryInfo(Long.MIN_VALUE, Integer.MIN_VALUE)));

    // A rate limit's delay: negative asks for no wait (retried after the jitter only), far
    // beyond maxServerDelay is thrown at once, whatever its size.
    reset();
    long began = System.nanoTime();
    script(Status.RESOURCE_EXHAUSTED, rateLimited(-1_000_000_000_000_000L));
    verify.get();
    check(seen.size() == 2, "negative delay: attempts " + seen.size());
    check(System.nanoTime() - began < 1_000_000_000L, "negative delay waited");
    for (long seconds : new long[] {Long.MAX_VALUE, 3_000_000_000L, Long.MIN_VALUE}) {
      began = System.nanoTime();
      EidException e = failure(verify, Status.RESOURCE_EXHAUSTED, rateLimited(seconds));
      check("PARTY_RATE_LIMITED".equals(e.reason()), seconds + " s delay: " + e);
      check(seconds < 0 || seen.size() == 1, seconds + " s delay: attempts " + seen.size());
      check(System.nanoTime() - began < 1_000_000_000L, seconds + " s delay waited");
    }

    // A write is retried with one generated UUID; each logical call has its own.
    reset();
    script(Status.UNAVAILABLE, null);
    script(Status.ABORTED, null);
    verify.get();
    check(seen.size() == 3 && new HashSet<>(seen).size() == 1, "request ids: " + seen);
    check(seen.get(0).matches("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"),
        "not a UUID: " + seen.get(0));
    String first = seen.get(0);
    seen.clear();
    verify.get();
    check(!seen.get(0).equals(first), "a second call reused the request id");
    // Not retried: other codes, and a write without a request_id.
    for (Status s : Arrays.asList(Status.INTERNAL, Status.UNKNOWN, Status.RESOURCE_EXHAUSTED)) {
      failure(verify, s, null);
      check(seen.size() == 1, s.getCode() + " retried");
    }
    failure(() -> eid.asParty(stub -> stub.verify(VerifyRequest.getDefaultInstance())),
        Status.UNAVAILABLE, null);
    check(seen.size() == 1, "a write without request_id was sent again");

    // The trailers of tests/unit/test_client_errors.py, read as the Python and Node SDKs read
    // them: by the trailer's code alone (its message may differ; the status line's is shown).
    EidException matching =
        failure(
            read,
            Status.FAILED_PRECONDITION.withDescription("refused"),
            rich(Status.Code.FAILED_PRECONDITION, errorInfo("SHARE_EXPIRED", "eid.v1")));
    check("SHARE_EXPIRED".equals(matching.reason()), "matching code: " + matching);
    check("refused".equals(matching.getMessage()), "message: " + matching.getMessage());
    EidException other =
        failure(
            read,
            Status.UNAVAILABLE.withDescription("refused"),
            rich(Status.Code.NOT_FOUND, errorInfo("SHARE_NOT_FOUND", "eid.v1"), retryInfo(1, 0)));
    check(
        other.reason() == null
            && other.domain() == null
            && other.metadata().isEmpty()
            && !other.retryDelay().isPresent(),
        "contradicting code: " + other);
    // The first ErrorInfo with a reason, alone: a reasonless one adds no domain or metadata.
    Any reasonless = errorInfo("", "proxy.example", Collections.singletonMap("hop", "0"));
    EidException mixed =
        failure(
            read,
            Status.FAILED_PRECONDITION,
            rich(
                Status.Code.FAILED_PRECONDITION,
                reasonless,
                errorInfo("SHARE_EXPIRED", "eid.v1", Collections.singletonMap("s", "1")),
                errorInfo("UPSTREAM", "proxy.example", Collections.singletonMap("h", "2"))));
    check(
        "SHARE_EXPIRED".equals(mixed.reason())
            && "eid.v1".equals(mixed.domain())
            && mixed.metadata().equals(Collections.singletonMap("s", "1")),
        "mixed ErrorInfos: " + mixed + " " + mixed.domain() + " " + mixed.metadata());
    EidException bare =
        failure(read, Status.FAILED_PRECONDITION, rich(Status.Code.FAILED_PRECONDITION, reasonless));
    check(
        bare.reason() == null && bare.domain() == null && bare.metadata().isEmpty(),
        "reasonless ErrorInfo: " + bare.domain() + " " + bare.metadata());
    // Another domain's reason is not eid's enum value (the string stays, for logs).
    EidException foreign =
        failure(
            read, Status.INTERNAL, rich(Status.Code.INTERNAL, errorInfo("INTERNAL", "proxy.example")));
    check(
        "INTERNAL".equals(foreign.reason())
            && foreign.errorReason() == ErrorReason.ERROR_REASON_UNSPECIFIED,
        "foreign domain: " + foreign.errorReason());

    // Interrupting the calling thread ends the call with CANCELLED: in flight (the server sees
    // the call cancelled) or waiting out the pause before a retry (which is never sent).
    reset();
    VerifyRequest held =
        VerifyRequest.newBuilder().setQrShare(QrShareCredential.newBuilder().setToken(HELD)).build();
    cancelled.clear();
    EidException inFlight = interrupted(() -> eid.verify(held), 1, 5_000);
    check(inFlight.code() == Status.Code.CANCELLED, "interrupted in flight: " + inFlight);
    await(() -> cancelled.size() == 1, "the server to see the cancellation");
    check(seen.size() == 1 && cancelled.get(0).equals(seen.get(0)), "in flight: " + seen);
    reset();
    script(Status.RESOURCE_EXHAUSTED, rateLimited(3));
    EidException pausing = interrupted(verify, 1, 2_500);
    check(pausing.code() == Status.Code.CANCELLED, "interrupted in the pause: " + pausing);
    check(seen.size() == 1, "a retry was sent after the interrupt: " + seen.size());
    // Cancelling the caller's io.grpc.Context does the same, in the pause too.
    reset();
    script(Status.RESOURCE_EXHAUSTED, rateLimited(3));
    Context.CancellableContext scope = Context.current().withCancellation();
    AtomicReference<Object> outcome = new AtomicReference<>();
    Thread caller =
        new Thread(
            scope.wrap(
                () -> {
                  try {
                    outcome.set(verify.get());
                  } catch (RuntimeException e) {
                    outcome.set(e);
                  }
                }));
    long started = System.nanoTime();
    caller.start();
    await(() -> seen.size() == 1, "the first attempt");
    scope.cancel(null);
    caller.join(5_000);
    Object ended = outcome.get();
    check(
        ended instanceof EidException && ((EidException) ended).code() == Status.Code.CANCELLED,
        "context cancelled in the pause: " + ended);
    check(System.nanoTime() - started < 2_500_000_000L, "the pause outlived the context");
    check(seen.size() == 1, "a retry was sent after the context was cancelled");

    // The credentials are in nothing printed.
    EidException refused = failure(read, Status.UNAUTHENTICATED, null);
    java.io.StringWriter trace = new java.io.StringWriter();
    refused.printStackTrace(new java.io.PrintWriter(trace));
    for (String shown : Arrays.asList(eid.toString(), refused.toString(), trace.toString())) {
      check(!shown.contains("s3cret"), "a credential printed: " + shown);
    }
  }

  private static void reset() {
    seen.clear();
    synchronized (script) {
      script.clear();
    }
  }

  private static void script(Status status, byte[] trailer) {
    synchronized (script) {
      script.add(new Answer(status, trailer));
    }
  }

  /** The call, failing once with {@code status} and {@code trailer}: its EidException. */
  private static EidException failure(Supplier<Object> call, Status status, byte[] trailer) {
    reset();
    script(status, trailer);
    // Answers past the first are the same failure, so a retry would fail alike.
    for (int i = 0; i < 10; i++) {
      script(status, trailer);
    }
    try {
      call.get();
    } catch (EidException e) {
      synchronized (script) {
        script.clear();
      }
      return e;
    } catch (RuntimeException other) {
      synchronized (script) {
        script.clear();
      }
      throw new AssertionError("not an EidException: " + other, other);
    }
    throw new AssertionError("the call succeeded against " + status);
  }

  /**
   * Runs {@code call} on a thread of its own, interrupts it once the server has seen {@code
   * attempts} attempts, and returns what it threw, within {@code withinMillis} of the interrupt;
   * the thread's interrupt flag must still be set.
   */
  private static EidException interrupted(Supplier<Object> call, int attempts, long withinMillis)
      throws InterruptedException {
    AtomicReference<Object> outcome = new AtomicReference<>();
    Thread caller =
        new Thread(
            () -> {
              try {
                outcome.set(call.get());
              } catch (RuntimeException e) {
                outcome.set(e);
              }
              if (!Thread.currentThread().isInterrupted()) {
                outcome.set(new AssertionError("the interrupt flag was cleared"));
              }
            });
    caller.start();
    await(() -> seen.size() >= attempts, attempts + " attempt(s) to arrive");
    long began = System.nanoTime();
    caller.interrupt();
    caller.join(withinMillis);
    check(!caller.isAlive(), "the interrupted call went on past " + withinMillis + " ms");
    check(System.nanoTime() - began < withinMillis * 1_000_000L, "the call outlived its interrupt");
    Object result = outcome.get();
    check(result instanceof EidException, "an interrupted call gave " + result);
    return (EidException) result;
  }

  private static void await(BooleanSupplier condition, String what) throws InterruptedException {
    long began = System.nanoTime();
    while (!condition.getAsBoolean()) {
      check(System.nanoTime() - began < 5_000_000_000L, "waited 5 s for " + what);
      Thread.sleep(10);
    }
  }

  private static void check(boolean ok, String what) {
    if (!ok) {
      throw new AssertionError(what);
    }
  }

  private static byte[] filled(int size, byte value) {
    byte[] bytes = new byte[size];
    Arrays.fill(bytes, value);
    return bytes;
  }

  private static byte[] rich(Status.Code code, Any... details) {
    return com.google.rpc.Status.newBuilder()
        .setCode(code.value())
        .setMessage("rich")
        .addAllDetails(Arrays.asList(details))
        .build()
        .toByteArray();
  }

  private static byte[] rateLimited(long seconds) {
    return rich(
        Status.Code.RESOURCE_EXHAUSTED,
        errorInfo("PARTY_RATE_LIMITED", "eid.v1"),
        retryInfo(seconds, 0));
  }

  private static Any errorInfo(String reason, String domain) {
    return errorInfo(reason, domain, Collections.<String, String>emptyMap());
  }

  private static Any errorInfo(String reason, String domain, Map<String, String> metadata) {
    return Any.pack(
        ErrorInfo.newBuilder().setReason(reason).setDomain(domain).putAllMetadata(metadata).build());
  }

  private static Any badRequest(String field) {
    return Any.pack(
        BadRequest.newBuilder()
            .addFieldViolations(
                BadRequest.FieldViolation.newBuilder().setField(field).setReason("X"))
            .build());
  }

  private static Any retryInfo(long seconds, int nanos) {
    return Any.pack(
        RetryInfo.newBuilder()
            .setRetryDelay(
                com.google.protobuf.Duration.newBuilder().setSeconds(seconds).setNanos(nanos))
            .build());
  }
}
