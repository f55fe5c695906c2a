package eid.interop;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.rpc.ErrorInfo;
import eid.client.EidClient;
import eid.client.EidException;
import eid.v1.IdentityServiceOuterClass.ActivateRequest;
import eid.v1.IdentityServiceOuterClass.Attribute;
import eid.v1.IdentityServiceOuterClass.Gender;
import eid.v1.IdentityServiceOuterClass.PasswordCredential;
import eid.v1.IdentityServiceOuterClass.QrShareCredential;
import eid.v1.IdentityServiceOuterClass.RegisterRequest;
import eid.v1.IdentityServiceOuterClass.RegisterResponse;
import eid.v1.IdentityServiceOuterClass.ShareViaQRRequest;
import eid.v1.IdentityServiceOuterClass.VerifyRequest;
import eid.v1.IdentityServiceOuterClass.VerifyResponse;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.stream.Collectors;

/**
 * The Java SDK against a real server, driven by tests/e2e/test_java_interop.py: one
 * tab-separated line per step on stdout, which the test checks. The activation code comes on
 * stdin once the program prints {@code need-code} (the test reads it from the server's outbox).
 *
 * <p>Arguments: personal ID, full name, birth date, phone, password, and the file holding the
 * app's capture of the citizen's face (128 little-endian float32 values, as {@code eid-server
 * demo-portrait} writes them for a demo citizen). Environment: EID_TARGET,
 * EID_API_KEY (a party allowed password and qr_share), EID_LIMITED_API_KEY (a party allowed
 * password and one call a minute).
 */
public final class Interop {
  private Interop() {}

  public static void main(String[] args) throws Exception {
    String id = args[0];
    String password = args[4];
    String target = System.getenv("EID_TARGET");
    try (EidClient app = EidClient.builder(target).usePlaintext().build();
        EidClient bank =
            EidClient.builder(target).usePlaintext().apiKey(System.getenv("EID_API_KEY")).build()) {
      RegisterRequest register =
          RegisterRequest.newBuilder()
              .setPersonalId(id)
              .setFullName(args[1])
              .setBirthDate(args[2])
              .setGender(Gender.GENDER_FEMALE)
              .setPhoneNumber(args[3])
              .setPortrait(ByteString.copyFrom(Files.readAllBytes(Paths.get(args[5]))))
              .build();
      RegisterResponse registered = app.register(register);
      say("registered", registered.getAccount().getState(), registered.getPersonalId());
      say("need-code");
      String code =
          new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)).readLine();
      ActivateRequest activate =
          ActivateRequest.newBuilder()
              .setPersonalId(id)
              .setActivationCode(code)
              .setNewPassword(password)
              .build();
      say("activated", app.activate(activate).getAccount().getState());

      VerifyRequest byPassword =
          VerifyRequest.newBuilder()
              .setPassword(PasswordCredential.newBuilder().setPersonalId(id).setPassword(password))
              .build();
      VerifyResponse verified = bank.verify(byPassword);
      say("verified", verified.getVerified(), verified.getAttributes().getFullName());

      app.signIn(id, password);
      String token =
          app.shareViaQr(
                  ShareViaQRRequest.newBuilder()
                      .addAttributes(Attribute.ATTRIBUTE_FULL_NAME)
                      .addAttributes(Attribute.ATTRIBUTE_BIRTH_DATE)
                      .build())
              .getToken();
      VerifyRequest redeem =
          VerifyRequest.newBuilder()
              .setQrShare(QrShareCredential.newBuilder().setToken(token))
              .build();
      VerifyResponse redeemed = bank.verify(redeem);
      say(
          "redeemed",
          redeemed.getVerified(),
          redeemed.getAttributes().getBirthDate(),
          "[" + redeemed.getAttributes().getPersonalId() + "]");

      sayError("again", () -> bank.verify(redeem));
      sayError("invalid", () -> app.register(register.toBuilder().setPersonalId("12345").build()));
      try (EidClient limited =
          EidClient.builder(target)
              .usePlaintext()
              .apiKey(System.getenv("EID_LIMITED_API_KEY"))
              .build()) {
        sayError("first", () -> limited.verify(byPassword));
        sayError("limited", () -> limited.verify(byPassword));
      }
    }
    sayError("unknown", () -> {
      throw EidException.from(failure(unknownReasonTrailer()));
    });
    sayError("garbled", () -> {
      throw EidException.from(failure(new byte[] {(byte) 0xff, 1}));
    });
  }

  private static void say(Object... fields) {
    System.out.println(
        java.util.Arrays.stream(fields).map(String::valueOf).collect(Collectors.joining("\t")));
  }

  /** Prints the call's EidException: code, reason, enum, field violations, retry delay. */
  private static void sayError(String step, Runnable call) {
    try {
      call.run();
      say(step, "OK");
    } catch (EidException e) {
      say(
          step,
          e.code(),
          e.reason(),
          e.errorReason(),
          e.fieldViolations().stream().map(Object::toString).collect(Collectors.joining(",")),
          e.retryDelay().map(d -> String.valueOf(d.toMillis())).orElse("-"));
    }
  }

  /** What a newer server might send: a reason this build's ErrorReason does not have. */
  private static byte[] unknownReasonTrailer() {
    ErrorInfo info =
        ErrorInfo.newBuilder().setReason("A_REASON_FROM_THE_FUTURE").setDomain("eid.v1").build();
    return com.google.rpc.Status.newBuilder()
        .setCode(Status.Code.FAILED_PRECONDITION.value())
        .addDetails(Any.pack(info))
        .build()
        .toByteArray();
  }

  private static StatusRuntimeException failure(byte[] trailer) {
    Metadata trailers = new Metadata();
    trailers.put(EidException.STATUS_DETAILS_KEY, trailer);
    return Status.FAILED_PRECONDITION.withDescription("simulated").asRuntimeException(trailers);
  }
}
