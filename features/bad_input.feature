Feature: Bad input — hostile cookies, oversized sessions, failing stores
  Whatever arrives in a Cookie header is treated as "no cookie": never a panic, never a
  server error, never somebody else's session.

  Background:
    Given a bridge with session cookie "app.sid" and a max age of 1 day, on a manual clock

  @X1
  Scenario: Malformed Cookie headers count as no cookie
    Given Alice has a session holding n = 1
    When requests arrive, one with each of these Cookie headers, and read the session:
      | case                          | header                                                            |
      | empty                         |                                                                   |
      | only separators               | ;;;===;                                                           |
      | empty value                   | app.sid=                                                          |
      | a lone dot                    | app.sid=.                                                         |
      | bytes that are not UTF-8      | app.sid={bytes FF FE}                                             |
      | huge                          | app.sid={100000 times A}                                          |
      | trailing junk                 | app.sid={Alice's session cookie}x                                 |
      | truncated signature           | app.sid={Alice's session cookie minus 2 characters}               |
      | opening quote                 | app.sid="{Alice's session cookie}                                 |
      | bare id without signature     | app.sid={Alice's session id}                                      |
      | client value as session value | app.sid={Alice's client cookie}                                   |
      | bare session id, real client  | app.sid.cid={Alice's client cookie}; app.sid={Alice's session id} |
      | signature without id          | app.sid=.{Alice's session signature}                              |
    Then every one of those requests succeeded with an empty session and no session cookie
    When Alice sends a request that increments n
    Then n is 2

  @X3
  Scenario: An oversized change is refused with a clear error and nothing is half-written
    Given the bridge limits sessions to 1024 bytes of JSON
    And Alice has a session holding n = 1
    When Alice sends a request that stores a 2048-byte string under blob
    Then the request fails with SessionTooLarge
    And the error names the limit of 1024 bytes
    And the request wrote nothing to the store
    When Alice sends a request that increments n
    Then n is 2

  @X3 @H4
  Scenario: An oversized new session is not created at all
    Given the bridge limits sessions to 1024 bytes of JSON
    When Alice sends a request that stores a 2048-byte string under blob
    Then the request fails with SessionTooLarge
    And the request wrote nothing to the store
    And the bridge has 0 mapped sessions
    And the bridge emitted no event

  @ST4
  Scenario: A store failure surfaces as an error that names no id, and nothing is lost
    Given Alice has a session holding n = 1
    And the store starts failing
    When Alice sends a request that reads the session
    Then the request fails with Store
    And the error does not reveal Alice's session id
    Given the store works again
    When Alice sends a request that increments n
    Then n is 2
