package eid.client;

import eid.v1.IdentityServiceGrpc;
import eid.v1.IdentityServiceGrpc.IdentityServiceBlockingStub;
import eid.v1.IdentityServiceOuterClass.ActivateRequest;
import eid.v1.IdentityServiceOuterClass.ActivateResponse;
import eid.v1.IdentityServiceOuterClass.RegisterRequest;
import eid.v1.IdentityServiceOuterClass.RegisterResponse;
import eid.v1.IdentityServiceOuterClass.ShareViaQRRequest;
import eid.v1.IdentityServiceOuterClass.ShareViaQRResponse;
import eid.v1.IdentityServiceOuterClass.SignInRequest;
import eid.v1.IdentityServiceOuterClass.SignInResponse;
import eid.v1.IdentityServiceOuterClass.VerifyRequest;
import eid.v1.IdentityServiceOuterClass.VerifyResponse;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.ForwardingClientCall;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.MetadataUtils;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * A typed wrapper over the generated {@link IdentityServiceGrpc} stubs: it sends the caller's
 * credentials as eid expects them (a relying party's {@code x-api-key}, a citizen session's
 * {@code authorization: Bearer}, an officer's {@code x-officer-key}), puts a deadline on every
 * call, fills in a fresh {@code request_id} when a mutating request has none, sends a call that
 * failed for a passing reason again (see {@link RetryPolicy}: only a call that cannot act twice,
 * with the same request and {@code request_id}, within its deadline) and turns every failure into
 * an {@link EidException}.
 *
 * <p>Any RPC is reachable through {@link #anonymous}, {@link #asParty}, {@link #asCitizen} and
 * {@link #asOfficer}: {@code client.asParty(stub -> stub.getVerificationKeys(request))}. The stub
 * they hand over already carries what is left of the call's deadline; {@code
 * stub.withDeadlineAfter(...)} overrides it for one attempt. A failed attempt may run the lambda
 * again, so make one RPC in it: a retry happens only when every request the attempt sent could
 * be sent twice.
 *
 * <p>Interrupting the calling thread ends a call, in flight (grpc-java cancels it; the server
 * sees the call cancelled) or waiting to be retried: it throws an {@link EidException} {@code
 * CANCELLED} and leaves the thread's interrupt flag set. Cancelling the caller's {@code
 * io.grpc.Context} (e.g. {@code Context.current().withCancellation()}) does the same.
 */
public final class EidClient implements AutoCloseable {
  public static final Metadata.Key<String> API_KEY =
      Metadata.Key.of("x-api-key", Metadata.ASCII_STRING_MARSHALLER);
  public static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  public static final Metadata.Key<String> OFFICER_KEY =
      Metadata.Key.of("x-officer-key", Metadata.ASCII_STRING_MARSHALLER);
  public static final Duration DEFAULT_DEADLINE = Duration.ofSeconds(10);
  /** The longest deadline a client takes (its arithmetic is in nanoseconds). */
  public static final Duration MAX_DEADLINE = Duration.ofDays(365);

  /** Requests without a request_id that only read, so sending them twice is harmless. */
  static final Set<String> READ_REQUESTS =
      Collections.unmodifiableSet(
          new HashSet<>(
              Arrays.asList(
                  "ListAccessHistoryRequest",
                  "ListApprovalRequestsRequest",
                  "ListDependantsRequest",
                  "ListLinkedDocumentsRequest",
                  "ListSharesRequest",
                  "ListSessionsRequest",
                  "GetVerificationKeysRequest",
                  "GetVerifyModeLocksRequest",
                  "GetStatusWebhookRequest")));

  private final ManagedChannel channel;
  private final boolean ownsChannel;
  private final String apiKey;
  private final String officerKey;
  private final Duration deadline;
  private final RetryPolicy retryPolicy;
  private volatile String sessionToken;
  private volatile String refreshToken;

  private EidClient(Builder b, ManagedChannel channel, boolean ownsChannel) {
    this.channel = channel;
    this.ownsChannel = ownsChannel;
    this.apiKey = b.apiKey;
    this.officerKey = b.officerKey;
    this.deadline = b.deadline;
    this.retryPolicy = b.retryPolicy;
    this.sessionToken = b.sessionToken;
  }

  /** A client of the server at {@code target}, e.g. {@code "eid.example.vn:443"}. */
  public static Builder builder(String target) {
    return new Builder(target);
  }

  public static final class Builder {
    private final String target;
    private String apiKey;
    private String officerKey;
    private String sessionToken;
    private Duration deadline = DEFAULT_DEADLINE;
    private RetryPolicy retryPolicy = RetryPolicy.DEFAULT;
    private ChannelCredentials credentials = TlsChannelCredentials.create();
    private ManagedChannel channel;

    private Builder(String target) {
      this.target = target;
    }

    /** The relying party's API key, sent on {@link #verify} and {@link #asParty} calls. */
    public Builder apiKey(String apiKey) {
      this.apiKey = apiKey;
      return this;
    }

    /** A registration officer's key, sent on {@link #asOfficer} calls. */
    public Builder officerKey(String officerKey) {
      this.officerKey = officerKey;
      return this;
    }

    /** Reuse a citizen session's access token instead of calling {@link #signIn}. */
    public Builder sessionToken(String sessionToken) {
      this.sessionToken = sessionToken;
      return this;
    }

    /** Each call's deadline, its retries included (default 10 s; more than 0, at most a year). */
    public Builder deadline(Duration deadline) {
      if (deadline.isNegative() || deadline.isZero() || deadline.compareTo(MAX_DEADLINE) > 0) {
        throw new IllegalArgumentException("the deadline must be more than 0 and at most a year");
      }
      this.deadline = deadline;
      return this;
    }

    /**
     * When a failed call is sent again: {@link RetryPolicy#DEFAULT} unless set, {@link
     * RetryPolicy#off()} to send every call once.
     */
    public Builder retryPolicy(RetryPolicy retryPolicy) {
      this.retryPolicy = Objects.requireNonNull(retryPolicy, "retryPolicy");
      return this;
    }

    /** No TLS: for a local development server only (`make run`). */
    public Builder usePlaintext() {
      this.credentials = InsecureChannelCredentials.create();
      return this;
    }

    /**
     * The channel's credentials; the default is TLS trusting the JVM's CAs. A private CA or a
     * client certificate: {@code TlsChannelCredentials.newBuilder().trustManager(caPem)
     * .keyManager(certPem, pkcs8KeyPem).build()}.
     */
    public Builder credentials(ChannelCredentials credentials) {
      this.credentials = credentials;
      return this;
    }

    /** Use a channel built elsewhere; the caller keeps ownership (close() leaves it open). */
    public Builder channel(ManagedChannel channel) {
      this.channel = channel;
      return this;
    }

    public EidClient build() {
      if (channel != null) {
        return new EidClient(this, channel, false);
      }
      return new EidClient(this, Grpc.newChannelBuilder(target, credentials).build(), true);
    }
  }

  /** Calls made before any sign-in: Register, Activate, SignIn, GetVerificationKeys. */
  public <T> T anonymous(Function<IdentityServiceBlockingStub, T> call) {
    return run(new Metadata(), call);
  }

  /** Calls of a relying party, with its {@code x-api-key}. */
  public <T> T asParty(Function<IdentityServiceBlockingStub, T> call) {
    return run(credential(API_KEY, require(apiKey, "no API key: set Builder.apiKey")), call);
  }

  /** Calls of the signed-in citizen, with {@code authorization: Bearer <session token>}. */
  public <T> T asCitizen(Function<IdentityServiceBlockingStub, T> call) {
    String token = require(sessionToken, "no citizen session: call signIn() first");
    return run(credential(AUTHORIZATION, "Bearer " + token), call);
  }

  /** Calls of a registration officer, with its {@code x-officer-key}. */
  public <T> T asOfficer(Function<IdentityServiceBlockingStub, T> call) {
    return run(credential(OFFICER_KEY, require(officerKey, "no officer key")), call);
  }

  public RegisterResponse register(RegisterRequest request) {
    RegisterRequest sent =
        request.getRequestId().isEmpty()
            ? request.toBuilder().setRequestId(newRequestId()).build()
            : request;
    return anonymous(stub -> stub.register(sent));
  }

  public ActivateResponse activate(ActivateRequest request) {
    ActivateRequest sent =
        request.getRequestId().isEmpty()
            ? request.toBuilder().setRequestId(newRequestId()).build()
            : request;
    return anonymous(stub -> stub.activate(sent));
  }

  /** Signs the citizen in and keeps the session for {@link #asCitizen} calls. */
  public SignInResponse signIn(String personalId, String password) {
    // A request id makes a retried sign-in get the first session, not open another.
    SignInRequest request =
        SignInRequest.newBuilder()
            .setPersonalId(personalId)
            .setPassword(password)
            .setRequestId(newRequestId())
            .build();
    SignInResponse session = anonymous(stub -> stub.signIn(request));
    sessionToken = session.getSessionToken();
    refreshToken = session.getRefreshToken();
    return session;
  }

  /** The kept session's access token (null before signIn). */
  public String sessionToken() {
    return sessionToken;
  }

  /** The kept session's refresh token, for RefreshSession (null before signIn). */
  public String refreshToken() {
    return refreshToken;
  }

  /** Issues a QR share of the signed-in citizen's chosen attributes. */
  public ShareViaQRResponse shareViaQr(ShareViaQRRequest request) {
    ShareViaQRRequest sent =
        request.getRequestId().isEmpty()
            ? request.toBuilder().setRequestId(newRequestId()).build()
            : request;
    return asCitizen(stub -> stub.shareViaQR(sent));
  }

  /**
   * Verifies a citizen as the relying party. A failure worth another attempt is retried with the
   * same request_id, so the server answers it once (a QR share is redeemed once, its attributes
   * come back on the retry). To send it again yourself later, set your own request_id ({@link
   * #newRequestId()}) and keep it.
   */
  public VerifyResponse verify(VerifyRequest request) {
    VerifyRequest sent =
        request.getRequestId().isEmpty()
            ? request.toBuilder().setRequestId(newRequestId()).build()
            : request;
    return asParty(stub -> stub.verify(sent));
  }

  /** A fresh idempotency key; reuse it when retrying a call. */
  public static String newRequestId() {
    return UUID.randomUUID().toString();
  }

  /** Closes the channel this client built (waiting up to 5 s for calls in flight). */
  @Override
  public void close() {
    if (!ownsChannel) {
      return;
    }
    channel.shutdown();
    try {
      if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
        channel.shutdownNow();
      }
    } catch (InterruptedException e) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  /**
   * Makes the call, and again while the policy allows: each attempt gets what is left of the
   * call's deadline, and the request it sent decides whether it may be sent twice.
   */
  private <T> T run(Metadata headers, Function<IdentityServiceBlockingStub, T> call) {
    long deadlineAt = System.nanoTime() + deadline.toNanos();
    EidException retried = null; // the latest error sent again
    for (int attempt = 1; ; attempt++) {
      SentRequest sent = new SentRequest();
      long began = System.nanoTime();
      IdentityServiceBlockingStub stub =
          IdentityServiceGrpc.newBlockingStub(channel)
              .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers), sent)
              .withDeadlineAfter(Math.max(deadlineAt - began, 0), TimeUnit.NANOSECONDS);
      EidException error;
      try {
        return call.apply(stub);
      } catch (StatusRuntimeException e) {
        error = EidException.from(e);
      }
      long pause = sent.cannotActTwice() ? retryPolicy.pauseNanos(error, attempt) : -1;
      long now = System.nanoTime();
      // A retry that could not end before the deadline (it needs as long as this attempt took)
      // could only fail with DEADLINE_EXCEEDED, hiding why the call failed.
      if (pause < 0 || now + pause + (now - began) - deadlineAt >= 0) {
        boolean ranOut = error.code() == Status.Code.DEADLINE_EXCEEDED && now - deadlineAt >= 0;
        throw ranOut && retried != null ? retried : error;
      }
      retried = error;
      try {
        pauseUnlessCancelled(pause);
      } catch (InterruptedException interrupted) {
        Thread.currentThread().interrupt();
        // As an interrupt in flight does (grpc-java cancels the call): CANCELLED, so a caller
        // that ended the call is not told the server failed, and the retry is never sent.
        throw EidException.from(
            Status.CANCELLED
                .withDescription("Thread interrupted")
                .withCause(interrupted)
                .asRuntimeException());
      }
    }
  }

  /**
   * Sleeps {@code nanos} before a retry, unless the caller's {@code io.grpc.Context} is cancelled
   * first: then throws what a call in that context fails with (CANCELLED, or DEADLINE_EXCEEDED
   * for a context's deadline), and no retry is sent.
   */
  private static void pauseUnlessCancelled(long nanos) throws InterruptedException {
    Context context = Context.current();
    CountDownLatch cancelled = new CountDownLatch(1);
    Context.CancellationListener wake = c -> cancelled.countDown();
    context.addListener(wake, Runnable::run);
    try {
      cancelled.await(nanos, TimeUnit.NANOSECONDS);
    } finally {
      context.removeListener(wake);
    }
    Status status = Contexts.statusFromCancelled(context);
    if (status != null) {
      throw EidException.from(status.asRuntimeException());
    }
  }

  /** Whether sending {@code request} twice acts once: it has a request_id, or it only reads. */
  static boolean cannotActTwice(Object request) {
    if (!(request instanceof Message)) {
      return false; // nothing was sent, or not a protobuf: never guess
    }
    Message message = (Message) request;
    FieldDescriptor requestId = message.getDescriptorForType().findFieldByName("request_id");
    if (requestId != null) {
      return !String.valueOf(message.getField(requestId)).isEmpty();
    }
    return READ_REQUESTS.contains(message.getDescriptorForType().getName());
  }

  /** Remembers the request messages an attempt sent (a lambda may make more than one RPC). */
  private static final class SentRequest implements ClientInterceptor {
    private final List<Object> requests = Collections.synchronizedList(new ArrayList<>());

    /** Whether the attempt sent something, and all of it may be sent twice. */
    boolean cannotActTwice() {
      synchronized (requests) {
        return !requests.isEmpty() && requests.stream().allMatch(EidClient::cannotActTwice);
      }
    }

    @Override
    public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions options, Channel next) {
      return new ForwardingClientCall.SimpleForwardingClientCall<ReqT, RespT>(
          next.newCall(method, options)) {
        @Override
        public void sendMessage(ReqT message) {
          requests.add(message);
          super.sendMessage(message);
        }
      };
    }
  }

  private static Metadata credential(Metadata.Key<String> key, String value) {
    Metadata headers = new Metadata();
    headers.put(key, value);
    return headers;
  }

  private static String require(String value, String missing) {
    if (value == null || value.isEmpty()) {
      throw new IllegalStateException(missing);
    }
    return value;
  }
}
