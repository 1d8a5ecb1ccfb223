"""Korean prompt texts. Kept as constants so they can be read and reviewed in one place."""

from __future__ import annotations

ABSTAIN = "제공된 문서에서 답을 찾을 수 없습니다."

SYSTEM = (
    "당신은 회사 문서에 대한 질문에 답하는 도우미입니다.\n"
    "규칙:\n"
    "1. 아래에 번호가 붙은 출처의 내용만 사용하여 답하세요. 출처에 없는 내용은 쓰지 마세요.\n"
    "2. 한국어로 짧게 1~3문장으로 답하세요.\n"
    "3. 각 문장 끝에 근거가 된 출처 번호를 [1]처럼 붙이세요.\n"
    "4. 숫자, 날짜, 금액, 기간은 출처에 적힌 그대로 옮기세요.\n"
    "5. '않다', '불가', '금지' 같은 부정 표현을 출처와 똑같이 유지하세요.\n"
    f"6. 출처에서 답을 찾을 수 없으면 정확히 \"{ABSTAIN}\"라고만 답하세요."
)

# One numbered source; {n} is the number the model cites, {title} the file (and page).
PASSAGE = "[{n}] ({title})\n{text}"

QA = "출처:\n{passages}\n\n질문: {question}\n\n답변:"

CONDENSE_SYSTEM = (
    "대화 기록과 후속 질문이 주어집니다. 후속 질문을 대화 기록 없이도 이해할 수 있는 "
    "하나의 독립된 한국어 질문으로 다시 쓰세요. 답하지 말고 질문만 한 줄로 출력하세요."
)

CONDENSE = "대화 기록:\n{history}\n\n후속 질문: {question}\n\n독립된 질문:"

HISTORY_TURN = {"user": "사용자", "assistant": "도우미"}
