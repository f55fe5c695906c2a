package eid.interop;

import eid.client.EidClient;
import eid.client.EidException;
import eid.client.RetryPolicy;
import eid.v1.IdentityServiceOuterClass.GetVerificationKeysRequest;
import eid.v1.IdentityServiceOuterClass.QrShareCredential;
import eid.v1.IdentityServiceOuterClass.VerifyRequest;
import java.time.Duration;
import java.util.function.Supplier;

/**
 * The Java SDK's retries against a scripted server, driven by tests/e2e/test_java_interop.py:
 * each scenario's QR token (or personal ID) tells the server how to fail, and the program prints
 * one tab-separated line per scenario: its name, {@code OK} or the error's code and reason, and
 * the milliseconds the call took. The server counts the attempts and their request ids.
 *
 * <p>Environment: EID_TARGET (a plaintext server).
 */
public final class RetryCheck {
  private RetryCheck() {}

  /** The default policy's shape with short pauses, so the check is quick. */
  private static final RetryPolicy QUICK =
      RetryPolicy.builder()
          .maxAttempts(3)
          .initialBackoff(Duration.ofMillis(10))
          .maxBackoff(Duration.ofMillis(50))
          .build();

  public static void main(String[] args) {
    String target = System.getenv("EID_TARGET");
    try (EidClient bank = client(target, QUICK, EidClient.DEFAULT_DEADLINE);
        EidClient once = client(target, RetryPolicy.off(), EidClient.DEFAULT_DEADLINE);
        EidClient hurried = client(target, RetryPolicy.DEFAULT, Duration.ofSeconds(1))) {
      for (String token : new String[] {"retried", "paced", "throttled", "pending", "exhausted"}) {
        run(token, () -> bank.verify(redeem(token)));
      }
      run("sign-in", () -> bank.signIn("sign-in", "not-a-password"));
      GetVerificationKeysRequest keys = GetVerificationKeysRequest.getDefaultInstance();
      run("keys", () -> bank.asParty(stub -> stub.getVerificationKeys(keys)));
      // A write sent through the generic path without a request_id could act twice.
      run("no-id", () -> bank.asParty(stub -> stub.verify(redeem("no-id"))));
      // So could this one, answered, when the read after it fails.
      run(
          "two",
          () ->
              bank.asParty(
                  stub -> {
                    stub.verify(redeem("two"));
                    return stub.getVerificationKeys(keys);
                  }));
      run("off", () -> once.verify(redeem("off")));
      run("deadline", () -> hurried.verify(redeem("deadline")));
      // 0.6 s of a 1 s deadline gone: a retry could not end in time, so none starts.
      run("slow", () -> hurried.verify(redeem("slow")));
    }
  }

  private static EidClient client(String target, RetryPolicy policy, Duration deadline) {
    return EidClient.builder(target)
        .usePlaintext()
        .apiKey("rp-key")
        .retryPolicy(policy)
        .deadline(deadline)
        .build();
  }

  private static VerifyRequest redeem(String token) {
    return VerifyRequest.newBuilder()
        .setQrShare(QrShareCredential.newBuilder().setToken(token))
        .build();
  }

  private static void run(String scenario, Supplier<?> call) {
    long began = System.nanoTime();
    String outcome;
    try {
      call.get();
      outcome = "OK";
    } catch (EidException e) {
      outcome = e.code() + "\t" + e.reason();
    }
    long ms = (System.nanoTime() - began) / 1_000_000;
    System.out.println(scenario + "\t" + outcome + "\t" + ms);
  }
}
