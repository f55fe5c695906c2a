package eid.client;

import io.grpc.Status;
import java.time.Duration;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Which failed calls {@link EidClient} sends again, how often and after how long: the same rules
 * as eid's Python and Node clients.
 *
 * <p>Retried: {@code UNAVAILABLE} and {@code ABORTED} (except {@code APPROVAL_PENDING}, an answer
 * that a caller polls on), and {@code RESOURCE_EXHAUSTED} for a party's pacing limits ({@code
 * PARTY_RATE_LIMITED}, {@code PARTY_CITIZEN_RATE_LIMITED}) when the server sent a {@code
 * google.rpc.RetryInfo} of at most {@link Builder#maxServerDelay} (5 s). Other
 * RESOURCE_EXHAUSTED reasons (wrong passwords or codes, codes sent too often) throttle people for
 * minutes to a day: retrying them would hide what an integrator must see.
 *
 * <p>Only a call that cannot act twice is sent again: one whose request carries a {@code
 * request_id} (the server answers a repeat with its first answer, AIP-155) or one that only reads
 * (Get*, List*). Before retry {@code n} (1, 2, ...) the client sleeps a
 * random time between 0 and {@code min(maxBackoff, initialBackoff * multiplier^(n-1))} ("full
 * jitter"), and at least the server's RetryInfo delay. A retry that could not end before the
 * call's deadline is not started: the error is thrown instead.
 */
public final class RetryPolicy {
  /** A party's pacing limits: their RetryInfo says when the bucket holds a token again. */
  public static final Set<String> RATE_LIMIT_REASONS =
      Collections.unmodifiableSet(
          new HashSet<>(Arrays.asList("PARTY_RATE_LIMITED", "PARTY_CITIZEN_RATE_LIMITED")));

  /** Answers, not failures: waitForApproval-style polling handles them. */
  static final Set<String> NOT_RETRIED_REASONS = Collections.singleton("APPROVAL_PENDING");

  /** The longest pause a policy may ask for (its arithmetic is in nanoseconds). */
  static final Duration LONGEST_PAUSE = Duration.ofDays(1);

  /** Five attempts, 100 ms doubling to 2 s, as the Python and Node clients. */
  public static final RetryPolicy DEFAULT = builder().build();

  private final int maxAttempts;
  private final Duration initialBackoff;
  private final Duration maxBackoff;
  private final double multiplier;
  private final Set<Status.Code> retryCodes;
  private final Duration maxServerDelay;

  private RetryPolicy(Builder b) {
    if (b.maxAttempts < 1) {
      throw new IllegalArgumentException("maxAttempts must be at least 1 (1: no retries)");
    }
    if (b.initialBackoff.isNegative()
        || b.initialBackoff.isZero()
        || b.initialBackoff.compareTo(b.maxBackoff) > 0
        || !(b.multiplier >= 1)) {
      throw new IllegalArgumentException(
          "need 0 < initialBackoff <= maxBackoff and multiplier >= 1");
    }
    if (b.maxBackoff.compareTo(LONGEST_PAUSE) > 0
        || b.maxServerDelay.isNegative()
        || b.maxServerDelay.compareTo(LONGEST_PAUSE) > 0) {
      throw new IllegalArgumentException("maxBackoff and maxServerDelay: 0 to a day");
    }
    this.maxAttempts = b.maxAttempts;
    this.initialBackoff = b.initialBackoff;
    this.maxBackoff = b.maxBackoff;
    this.multiplier = b.multiplier;
    this.retryCodes = Collections.unmodifiableSet(b.retryCodes);
    this.maxServerDelay = b.maxServerDelay;
  }

  /** Every call is sent once; failures are thrown as they come. */
  public static RetryPolicy off() {
    return builder().maxAttempts(1).build();
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Attempts per call, the first included. */
  public int maxAttempts() {
    return maxAttempts;
  }

  /** Whether {@code error} is worth another attempt (of a call that cannot act twice). */
  public boolean retryable(EidException error) {
    if (error.reason() != null && NOT_RETRIED_REASONS.contains(error.reason())) {
      return false;
    }
    if (retryCodes.contains(error.code())) {
      return true;
    }
    return error.code() == Status.Code.RESOURCE_EXHAUSTED
        && error.reason() != null
        && RATE_LIMIT_REASONS.contains(error.reason())
        && error.retryDelay().isPresent();
  }

  /** The longest jittered pause before retry number {@code retry} (1-based), in nanoseconds. */
  long backoffCapNanos(int retry) {
    // Capped before the power can overflow on absurd attempt counts.
    double cap = initialBackoff.toNanos() * Math.pow(multiplier, Math.min(retry - 1, 64));
    return (long) Math.min((double) maxBackoff.toNanos(), cap);
  }

  /** Nanoseconds to sleep before retry number {@code retry}, or -1: do not retry. */
  long pauseNanos(EidException error, int retry) {
    if (retry >= maxAttempts || !retryable(error)) {
      return -1;
    }
    long jittered = (long) (ThreadLocalRandom.current().nextDouble() * backoffCapNanos(retry));
    if (!error.retryDelay().isPresent()) {
      return jittered;
    }
    Duration asked = error.retryDelay().get();
    if (asked.compareTo(maxServerDelay) > 0) {
      return -1; // a longer wait is the caller's to plan for, not a pause inside a call
    }
    // A negative delay asks for no more than jitter (and a huge one would overflow toNanos).
    return Math.max(asked.isNegative() ? 0 : asked.toNanos(), jittered);
  }

  /** A policy; the defaults are {@link RetryPolicy#DEFAULT}'s. */
  public static final class Builder {
    private int maxAttempts = 5;
    private Duration initialBackoff = Duration.ofMillis(100);
    private Duration maxBackoff = Duration.ofSeconds(2);
    private double multiplier = 2.0;
    private EnumSet<Status.Code> retryCodes =
        EnumSet.of(Status.Code.UNAVAILABLE, Status.Code.ABORTED);
    private Duration maxServerDelay = Duration.ofSeconds(5);

    private Builder() {}

    /** Attempts per call, the first included (default 5; 1 sends every call once). */
    public Builder maxAttempts(int maxAttempts) {
      this.maxAttempts = maxAttempts;
      return this;
    }

    /** The cap of the first jittered pause (default 100 ms). */
    public Builder initialBackoff(Duration initialBackoff) {
      this.initialBackoff = initialBackoff;
      return this;
    }

    /** The cap of every jittered pause (default 2 s). */
    public Builder maxBackoff(Duration maxBackoff) {
      this.maxBackoff = maxBackoff;
      return this;
    }

    /** How much the cap grows from one retry to the next (default 2). */
    public Builder multiplier(double multiplier) {
      this.multiplier = multiplier;
      return this;
    }

    /** The status codes retried (default UNAVAILABLE and ABORTED). */
    public Builder retryCodes(Set<Status.Code> retryCodes) {
      this.retryCodes = EnumSet.noneOf(Status.Code.class);
      this.retryCodes.addAll(retryCodes);
      return this;
    }

    /** The longest RetryInfo delay waited out inside a call (default 5 s). */
    public Builder maxServerDelay(Duration maxServerDelay) {
      this.maxServerDelay = maxServerDelay;
      return this;
    }

    public RetryPolicy build() {
      return new RetryPolicy(this);
    }
  }
}
